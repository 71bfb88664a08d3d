/**
 * Every operator, loaded when this module is imported (a top-level await):
 * for what lists or may meet any operator (`streams ops`, the generated docs,
 * workers, tests). A command that checks one pipeline loads only the
 * operators it names instead (`loadOperators` in `nodes/registry.ts`).
 */
import type { OperatorDefinition } from '../runtime/api.ts';
import { loadAllOperators, registry } from './registry.ts';

await loadAllOperators();

export { registry };

/** Every operator's definition, in the registry's order. */
export const operators: readonly OperatorDefinition[] = [...registry.values()];
