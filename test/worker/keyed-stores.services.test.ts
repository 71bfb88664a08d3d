/**
 * The partition states of keyed nodes in the real Redis and PostgreSQL
 * stores (docs/keyed-state.md): saved and loaded by name, never replaced by
 * a state less far along the partition, and left alone by a save of the
 * pipeline's node snapshots.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStateStore, type StateStore } from '../../runtime/state/store.ts';
import { partitionStateTable } from '../../runtime/state/postgres-store.ts';
import { openClient } from '../../native/postgres/client.ts';
import { serviceSetting } from '../connectors/redis-pg-harness.ts';
import { uniqueName } from './worker-harness.ts';

const pipeline = uniqueName('keyed-stores');
const opened: StateStore[] = [];

afterAll(async () => {
  for (const store of opened) await store.close();
  const { Redis } = await import('ioredis');
  const redis = new Redis(serviceSetting('STREAMS_REDIS_URL'));
  const keys = await redis.keys(`streams:state:${pipeline}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  const pg = await openClient(serviceSetting('STREAMS_PG_URL'), 'keyed-stores-test');
  await pg.query(`delete from ${partitionStateTable} where pipeline = $1`, [pipeline]);
  await pg.query('delete from streams_state where pipeline = $1', [pipeline]);
  await pg.end();
});

describe.each(['STREAMS_REDIS_URL', 'STREAMS_PG_URL'] as const)('partition states in %s', (setting) => {
  it('keeps the state furthest along each partition, apart from the node snapshots', async () => {
    const store = await openStateStore(serviceSetting(setting));
    opened.push(store);
    const name = `win/t/p${setting.length}`;
    expect(await store.loadPartition(pipeline, name)).toBeUndefined();
    expect(await store.savePartition(pipeline, name, { position: 20, state: { panes: [1, 2] } })).toBe(true);
    // A member that lost the partition saves late: refused.
    expect(await store.savePartition(pipeline, name, { position: 12, state: { panes: [1] } })).toBe(false);
    expect(await store.loadPartition(pipeline, name)).toEqual({ position: 20, state: { panes: [1, 2] } });
    expect(await store.savePartition(pipeline, name, { position: 31, state: { panes: [3] } })).toBe(true);
    await store.save(pipeline, new Map([['other', { n: 1 }]]));
    expect(await store.loadPartition(pipeline, name)).toEqual({ position: 31, state: { panes: [3] } });
    expect(await store.load(pipeline)).toEqual(new Map([['other', { n: 1 }]]));
  });
});
