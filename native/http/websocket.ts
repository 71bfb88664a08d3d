/**
 * WebSocket servers and clients (the `ws` package, imported when the first
 * one is made, so a process without WebSocket nodes never loads it).
 */
import type { ServerOptions, WebSocket, WebSocketServer } from 'ws';

export type { WebSocket, WebSocketServer };

/** `readyState` of a socket that can send (`WebSocket.OPEN`). */
export const socketOpen = 1;
/** `readyState` of a socket that is closed for good (`WebSocket.CLOSED`). */
export const socketClosed = 3;

/** A WebSocket server; with `noServer`, it upgrades the requests of an HTTP server of the caller's. */
export async function createWebSocketServer(options: ServerOptions): Promise<WebSocketServer> {
  const ws = await import('ws');
  return new ws.WebSocketServer(options);
}

/** The WebSocket client class, to connect with `new`. */
export async function loadWebSocketClient(): Promise<typeof WebSocket> {
  return (await import('ws')).WebSocket;
}
