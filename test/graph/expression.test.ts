import { describe, expect, it } from 'vitest';
import { checkExpression } from '../../graph/expression.ts';

describe('checkExpression', () => {
  it('says an empty list literal makes an operation ambiguous, pointing at the `[]`, not with the library\'s internal message', () => {
    const problem = checkExpression('size(x) > 0 && [].map(n, n / 2) == []');
    expect(problem?.message).toBe("cannot choose between `int / int` and `double / int`: an operand's type is not known (an element of an empty list `[]`)");
    expect(problem?.offset).toBe(15);
  });

  it('accepts arithmetic mixing fields with int literals and equality across number kinds', () => {
    expect(checkExpression('2 * value + 1 > 3.0 && size(name) > 0')).toBeUndefined();
    expect(checkExpression('1.0 == 1 && 2u != 3 && b"a" < b"b"')).toBeUndefined();
  });
});
