/** Refusing an HTTP upgrade (a WebSocket handshake) before it completes. */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answers an upgrade request with a plain HTTP status (401, 404, 503) and
 * closes the socket, as a server that never upgraded would.
 */
export function rejectUpgrade(socket: Duplex, status: number, headers: Record<string, string> = {}): void {
  const reason = STATUS_CODES[status] ?? 'Error';
  const body = `${reason}\n`;
  const lines = [`HTTP/1.1 ${status} ${reason}`, 'Connection: close', 'Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  socket.once('finish', () => socket.destroy());
  socket.once('error', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
