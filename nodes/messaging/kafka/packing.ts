/**
 * Packed messages: several records in one Kafka message, so that the Kafka
 * client's cost per message (building produce requests, parsing fetches) is
 * paid once per pack, not once per record. The engine's own cross-host edges
 * use it (`graph/host-graph.ts` sets `pack_bytes` on the sending
 * `kafka.produce` and `unpack` on the receiving `kafka.consume`).
 *
 * Wire format: the value is the records' values one after the other, each
 * preceded by its length (unsigned 32-bit, big-endian), and the header
 * `ami-streams-packed` gives their count. Records are grouped per partition,
 * each chosen as the client would choose it for the record alone (by key, or
 * the record's fixed partition), so a key's records land in its partition in
 * order; the packed message is written to that partition explicitly, without
 * a key. Only records with the same headers (their batch's trace context)
 * share a pack, so each record keeps its own trace.
 */
import type { OutgoingMessage } from '../../../native/kafka/client.ts';
import { keyPartition } from '../../../native/kafka/partitioner.ts';

/** The header that marks a packed message; its value is the number of records, as text. */
export const packedHeader = 'ami-streams-packed';
const packedHeaderName = Buffer.from(packedHeader);
const frameHead = 4;

/** The open pack of one partition. */
interface OpenPack {
  partition: number;
  /** Its records' headers as text: records with other headers start a new pack. */
  id: string;
  headers: Map<Buffer, Buffer> | undefined;
  values: Buffer[];
  /** The messages packed, for the tag of the packed message. */
  records: OutgoingMessage[];
  bytes: number;
}

/** The tag of a packed message (`OutgoingMessage.tag`): the messages it packs, whose own tags say what they carry. */
export interface PackTag {
  packed: readonly OutgoingMessage[];
}

/** The messages a packed message packs, or undefined when `message` is not a pack. */
export function packedMessages(message: OutgoingMessage): readonly OutgoingMessage[] | undefined {
  return (message.tag as PackTag | undefined)?.packed;
}

/**
 * Packs `messages` (one record each, all to one topic) into messages of at
 * most `maxBytes` of values each. A record that does not fit in `maxBytes`
 * goes alone and unpacked (its own message, to the partition it would take
 * anyway), after its partition's open pack, so order is kept. `partitions` is the topic's partition count. Keyless records
 * without a fixed partition may go to any partition: they take one per
 * call, `spread` (a counter the caller keeps, so that successive requests
 * take turns over the partitions).
 */
export function packMessages(messages: readonly OutgoingMessage[], { partitions, maxBytes, spread = 0 }: { partitions: number; maxBytes: number; spread?: number }): OutgoingMessage[] {
  const packed: OutgoingMessage[] = [];
  // One open pack per partition: a record with other headers (another batch's trace) seals
  // it first, so a partition's records keep their order across its packs.
  const open = new Map<number, OpenPack>();
  const keyless = spread % partitions;
  for (const message of messages) {
    const partition = message.partition !== undefined ? message.partition % partitions : message.key ? keyPartition(message.key, partitions) : keyless;
    const value = message.value ?? Buffer.alloc(0);
    const id = message.headers === undefined || message.headers.size === 0 ? '' : headerText(message.headers);
    let pack = open.get(partition);
    if (pack && (pack.id !== id || pack.bytes + frameHead + value.length > maxBytes)) {
      packed.push(sealed(message.topic, pack));
      open.delete(partition);
      pack = undefined;
    }
    if (frameHead + value.length > maxBytes) {
      // Alone and as it is (a keyframe of a media edge, say): no copy, and no byte more than
      // unpacked, so a record the broker takes unpacked it takes here too. Any consumer reads it.
      packed.push({ ...message, partition });
      continue;
    }
    if (!pack) {
      pack = { partition, id, headers: message.headers, values: [], records: [], bytes: 0 };
      open.set(partition, pack);
    }
    pack.values.push(value);
    pack.records.push(message);
    pack.bytes += frameHead + value.length;
  }
  for (const pack of open.values()) packed.push(sealed(messages[0].topic, pack));
  return packed;
}

function headerText(headers: Map<Buffer, Buffer>): string {
  let text = '';
  for (const [name, value] of headers) text += `${name.toString('latin1')}\u0000${value.toString('latin1')}\u0000`;
  return text;
}

/** One pack as a message: the length-prefixed values, the count in its header. */
function sealed(topic: string, pack: OpenPack): OutgoingMessage {
  const value = Buffer.allocUnsafe(pack.bytes);
  let at = 0;
  for (const part of pack.values) {
    value.writeUInt32BE(part.length, at);
    part.copy(value, at + frameHead);
    at += frameHead + part.length;
  }
  const headers = new Map(pack.headers ?? []);
  headers.set(packedHeaderName, Buffer.from(String(pack.values.length)));
  const tag: PackTag = { packed: pack.records };
  return { topic, value, partition: pack.partition, headers, tag };
}

/**
 * The record count a message's `ami-streams-packed` header gives, or
 * undefined when it has none (a message of one record).
 */
export function packedCount(headers: ReadonlyMap<Buffer | string, Buffer | string | undefined>): number | undefined {
  if (headers.size === 0) return undefined;
  for (const [name, value] of headers) {
    if (name.length !== packedHeader.length || name.toString() !== packedHeader) continue;
    const count = Number(value?.toString());
    return Number.isSafeInteger(count) && count >= 0 ? count : -1;
  }
  return undefined;
}

/**
 * The values packed in `value`, which should hold `count` of them; throws
 * when it does not (a truncated or foreign message), naming what is wrong.
 * The values are views of `value`, not copies.
 */
export function unpackValues(value: Buffer | null | undefined, count: number): Buffer[] {
  if (count < 0) throw new TypeError(`the \`${packedHeader}\` header is not a record count`);
  const values: Buffer[] = [];
  const data = value ?? Buffer.alloc(0);
  let at = 0;
  while (at < data.length) {
    if (at + frameHead > data.length) throw new TypeError(`packed message cut short: ${data.length - at} bytes left where a record's length was expected`);
    const length = data.readUInt32BE(at);
    const end = at + frameHead + length;
    if (end > data.length) throw new TypeError(`packed message cut short: record ${values.length + 1} says ${length} bytes, ${data.length - at - frameHead} are left`);
    values.push(data.subarray(at + frameHead, end));
    at = end;
  }
  if (values.length !== count) throw new TypeError(`packed message holds ${values.length} records, its \`${packedHeader}\` header says ${count}`);
  return values;
}
