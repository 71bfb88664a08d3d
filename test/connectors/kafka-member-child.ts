/**
 * One group member in its own process (see kafka-member.ts), writing each
 * event as a JSON line on stdout until it is killed.
 * Usage: `node kafka-member-child.ts BROKERS TOPIC GROUP SESSION_TIMEOUT_MS`.
 */
import { startMember } from './kafka-member.ts';

const [brokers, topic, group, session] = process.argv.slice(2);
await startMember({ brokers, topic, group, sessionTimeoutMs: Number(session) }, (event) => process.stdout.write(`${JSON.stringify(event)}\n`));
