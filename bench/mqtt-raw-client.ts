/**
 * Bare MQTT 3.1.1 over a socket for the W2 benchmark's own publisher and
 * measuring subscriber: pre-encoded QoS 0 packets, many per write, and
 * PUBLISH packets parsed off the socket by hand. The cheapest clients there
 * are, so that the broker and the subscriber under test set the pace, not
 * the benchmark's own client library.
 */
import { createConnection, type Socket } from 'node:net';

/** An MQTT 3.1.1 PUBLISH packet at QoS 0. */
export function publishPacket(topic: string, payload: string): Buffer {
  const topicLength = Buffer.byteLength(topic);
  const length = 2 + topicLength + Buffer.byteLength(payload);
  const header: number[] = [0x30];
  for (let rest = length; ; ) {
    const digit = rest % 128;
    rest = Math.floor(rest / 128);
    header.push(rest > 0 ? digit | 0x80 : digit);
    if (rest === 0) break;
  }
  const packet = Buffer.allocUnsafe(header.length + length);
  packet.set(header, 0);
  packet.writeUInt16BE(topicLength, header.length);
  packet.write(topic, header.length + 2);
  packet.write(payload, header.length + 2 + topicLength);
  return packet;
}

/** Numbers the connections of this process, for distinct client ids. */
let rawConnections = 0;

/**
 * A publisher that writes pre-encoded QoS 0 packets straight to the socket,
 * many per write, waiting only for the socket to drain.
 */
export class RawPublisher {
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
  }

  static async connect(url: string): Promise<RawPublisher> {
    const { hostname, port } = new URL(url);
    const socket = createConnection({ host: hostname, port: Number(port || 1883), noDelay: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const clientId = Buffer.from(`w2-raw-${process.pid}-${++rawConnections}`);
    // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s.
    const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, clientId.length]), clientId]);
    socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`the broker refused the publisher: ${connack.toString('hex')}`);
    return new RawPublisher(socket);
  }

  write(chunk: Buffer): Promise<void> | void {
    if (this.socket.write(chunk)) return;
    return new Promise((resolve) => this.socket.once('drain', resolve));
  }

  async end(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.end(Buffer.from([0xe0, 0]), resolve));
  }
}

/**
 * A subscriber that parses QoS 0 PUBLISH packets off the socket itself, so
 * the measuring end adds as little as possible to what it measures.
 */
export class RawSubscriber {
  static async connect(url: string, filter: string, onMessage: (payload: Buffer, receivedAt: number) => void): Promise<RawSubscriber> {
    const publisher = await RawPublisher.connect(url);
    const socket = publisher.socket;
    const topic = Buffer.from(filter);
    const body = Buffer.concat([Buffer.from([0, 1, topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([0])]);
    socket.write(Buffer.concat([Buffer.from([0x82, body.length]), body]));
    let buffer: Buffer = Buffer.alloc(0);
    let subscribed!: () => void;
    const suback = new Promise<void>((resolve) => (subscribed = resolve));
    socket.on('data', (chunk: Buffer) => {
      const receivedAt = performance.now();
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      let at = 0;
      for (;;) {
        if (buffer.length - at < 2) break;
        let length = 0;
        let multiplier = 1;
        let index = at + 1;
        let complete = false;
        while (index < buffer.length) {
          const digit = buffer[index++];
          length += (digit & 0x7f) * multiplier;
          multiplier *= 128;
          if ((digit & 0x80) === 0) {
            complete = true;
            break;
          }
        }
        if (!complete || index + length > buffer.length) break;
        const type = buffer[at] >> 4;
        if (type === 3) {
          const topicLength = buffer.readUInt16BE(index);
          onMessage(buffer.subarray(index + 2 + topicLength, index + length), receivedAt);
        } else if (type === 9) subscribed();
        at = index + length;
      }
      buffer = buffer.subarray(at);
    });
    await suback;
    return new RawSubscriber(publisher);
  }

  #connection: RawPublisher;

  private constructor(connection: RawPublisher) {
    this.#connection = connection;
  }

  end(): Promise<void> {
    return this.#connection.end();
  }
}
