/**
 * The operators and conversions the engine adds to the CEL library.
 *
 * Records come from JSON, where every number is a CEL `double`, while the
 * literals users write (`value * 2`, `count == 1`) are `int`s. So arithmetic
 * and equality across `int`, `uint` and `double` are defined here, with a
 * `double` result, as a user of JSON data expects. The rest fill gaps against
 * the CEL specification that google/cel-spec's conformance tests found
 * (`test/graph/expression-conformance.test.ts`).
 */
import type { Environment } from '@marcbachmann/cel-js';

/** What the library hands a handler for a `uint`: an object holding a BigInt. */
interface UnsignedValue {
  value: bigint;
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

/** A CEL number (`int` BigInt, `uint` wrapper or `double`) as a JavaScript number or BigInt. */
function numeric(value: unknown): number | bigint {
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  return BigInt((value as UnsignedValue).value);
}

/** Exact numeric equality across BigInt and number: `1 == 1.0`, but `2^53 + 1 != 2.0^53`. */
function numbersEqual(a: unknown, b: unknown): boolean {
  const x = numeric(a);
  const y = numeric(b);
  if (typeof x === typeof y) return x === y;
  const [big, float] = (typeof x === 'bigint' ? [x, y] : [y, x]) as [bigint, number];
  return Number.isInteger(float) && BigInt(float) === big;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Registers the engine's operators and conversions on a fresh environment. */
export function registerEngineOverloads(env: Environment): void {
  const arithmetic: Record<string, (a: number, b: number) => number> = {
    '+': (a, b) => a + b,
    '-': (a, b) => a - b,
    '*': (a, b) => a * b,
    '/': (a, b) => a / b,
    '%': (a, b) => a % b,
  };
  for (const [op, apply] of Object.entries(arithmetic)) {
    for (const [left, right] of [['double', 'int'], ['int', 'double']]) {
      // The result type must be stated: the library otherwise takes the left operand's, and would type
      // `2 * value` as int, so that a later `+ 1` picks int + int and fails on the double it gets.
      env.registerOperator(`${left} ${op} ${right}: double`, (a: unknown, b: unknown) => apply(Number(a), Number(b)));
    }
  }
  // Equality across number kinds, as CEL defines it: by numeric value (`1.0 == 1`, `2u == 2`).
  // Registering `==` also gives `!=` and the swapped operand order.
  for (const [left, right] of [['double', 'int'], ['uint', 'int'], ['double', 'uint']]) {
    env.registerOperator(`${left} == ${right}`, numbersEqual);
  }
  const orderings: Record<string, (order: number) => boolean> = { '<': (o) => o < 0, '<=': (o) => o <= 0, '>': (o) => o > 0, '>=': (o) => o >= 0 };
  for (const [op, holds] of Object.entries(orderings)) {
    env.registerOperator(`bytes ${op} bytes`, (a: Uint8Array, b: Uint8Array) => holds(compareBytes(a, b)));
  }
  env.registerFunction('int(uint): int', function intOfUint(value: UnsignedValue): bigint {
    const result = BigInt(value.value);
    if (result > int64Max) throw new RangeError('int overflow');
    return result;
  });
  env.registerFunction('int(google.protobuf.Timestamp): int', function intOfTimestamp(value: Date): bigint {
    const seconds = BigInt(Math.floor(value.getTime() / 1000));
    if (seconds < int64Min || seconds > int64Max) throw new RangeError('int overflow');
    return seconds;
  });
  env.registerFunction('timestamp(google.protobuf.Timestamp): google.protobuf.Timestamp', function sameTimestamp(value: Date): Date {
    return value;
  });
  env.registerFunction('duration(google.protobuf.Duration): google.protobuf.Duration', function sameDuration(value: unknown): unknown {
    return value;
  });
}
