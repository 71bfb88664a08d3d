import { environment } from './graph/expression.ts';
const env = environment().clone({ unlistedVariablesAreDyn: false });
env.registerVariable('i', 'double');
const r = env.parse('value + 1.0').check() as any; console.log(r.valid, r.error?.code, r.error?.message);
try { env.registerVariable('value', 'dyn'); console.log(env.parse('value + 1.0').check()); } catch (e) { console.log('ERR', (e as Error).message); }
