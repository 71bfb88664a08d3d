/**
 * OBS Studio as a real publisher, for media tests: Xvfb on a free display,
 * OBS started under it with a throwaway home (its `global.ini` enables
 * obs-websocket on a loopback port with a random password, no first-run
 * wizard), and a small obs-websocket protocol v5 client over the `ws`
 * package to build the scene and start streaming. `stop` ends OBS and Xvfb,
 * their whole process groups, and waits until nothing of them is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

/** A running OBS: its log so far, its websocket client, and `stop`. */
export interface ObsStudio {
  obs: ChildProcess;
  xvfb: ChildProcess;
  /** OBS's stdout and stderr so far. */
  log(): string;
  /** Sends one obs-websocket request; resolves with its `responseData`, rejects with the request's status comment. */
  request(type: string, data?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Closes the websocket, ends OBS and Xvfb (SIGTERM, then SIGKILL) and removes the home; the pids of anything left over. */
  stop(): Promise<number[]>;
}

/** A display number with no X server on it (no lock file). */
function freeDisplay(): number {
  for (let display = 90 + Math.floor(Math.random() * 100); display < 400; display++) {
    if (!existsSync(`/tmp/.X${display}-lock`) && !existsSync(`/tmp/.X11-unix/X${display}`)) return display;
  }
  throw new Error('no free X display number');
}

/** The processes of process group `pgid` still alive (zombies included: they are not reaped yet). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // `pid (comm) state ppid pgrp ...`: fields after the last `)`.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) members.push(Number(entry));
    } catch {
      // exited between the listing and the read
    }
  }
  return members;
}

/** Ends a detached child's process group: SIGTERM, then SIGKILL after `ms`; resolves once the group is empty (or 5 s more). */
async function endGroup(child: ChildProcess, ms: number): Promise<number[]> {
  const pgid = child.pid;
  if (pgid === undefined) return [];
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pgid, name);
    } catch {
      // the group is already gone
    }
  };
  signal('SIGTERM');
  const killAt = Date.now() + ms;
  const giveUpAt = killAt + 5_000;
  let killed = false;
  for (;;) {
    const left = groupMembers(pgid);
    if (left.length === 0 || Date.now() > giveUpAt) return left;
    if (!killed && Date.now() > killAt) {
      killed = true;
      signal('SIGKILL');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Keeps a child's output (the last 200 kB). */
function capture(child: ChildProcess): () => string {
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text;
}

/** Waits for `check` to give a value, polling every 100 ms; rejects with `what` after `ms`. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** obs-websocket v5 authentication: base64(sha256(base64(sha256(password + salt)) + challenge)). */
function authentication(password: string, salt: string, challenge: string): string {
  const secret = createHash('sha256').update(password + salt).digest('base64');
  return createHash('sha256').update(secret + challenge).digest('base64');
}

/** Connects and identifies (protocol v5, RPC version 1); resolves with the open socket. */
function connect(port: number, password: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`, 'obswebsocket.json');
    socket.once('error', reject);
    socket.on('message', function identify(data) {
      const message = JSON.parse(String(data)) as { op: number; d: { authentication?: { salt: string; challenge: string } } };
      if (message.op === 0) {
        const auth = message.d.authentication;
        socket.send(JSON.stringify({ op: 1, d: { rpcVersion: 1, ...(auth ? { authentication: authentication(password, auth.salt, auth.challenge) } : {}), eventSubscriptions: 0 } }));
      } else if (message.op === 2) {
        socket.off('message', identify);
        socket.off('error', reject);
        resolve(socket);
      }
    });
    socket.once('close', (code, reason) => reject(new Error(`obs-websocket closed the connection (${code} ${String(reason)})`)));
  });
}

/**
 * Starts Xvfb and OBS (software OpenGL), base and output canvas `width` x
 * `height`, and connects to obs-websocket on `port` (it binds every IPv4
 * address in OBS 29: the random password keeps others out).
 */
export async function startObs(options: { port: number; width: number; height: number; fps: number }): Promise<ObsStudio> {
  const home = mkdtempSync(join(tmpdir(), 'obs-home-'));
  const password = randomBytes(12).toString('hex');
  const config = join(home, '.config', 'obs-studio');
  const profile = join(config, 'basic', 'profiles', 'Test');
  mkdirSync(profile, { recursive: true });
  // FirstRun and LastVersion: no auto-configuration wizard, no "what's new" dialog.
  writeFileSync(join(config, 'global.ini'), `[General]
FirstRun=true
LastVersion=486539266
Pre19Defaults=false
Pre21Defaults=false
Pre23Defaults=false
Pre24.1Defaults=false
Profile=Test
ProfileDir=Test
SceneCollection=Test
SceneCollectionFile=Test

[BasicWindow]
SysTrayEnabled=false

[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort=${options.port}
AuthRequired=true
ServerPassword=${password}
AlertsEnabled=false
`);
  // Advanced output: x264 with a keyframe every second, as the live pipeline's 1 s segments want.
  writeFileSync(join(profile, 'basic.ini'), `[General]
Name=Test

[Video]
BaseCX=${options.width}
BaseCY=${options.height}
OutputCX=${options.width}
OutputCY=${options.height}
FPSType=1
FPSInt=${options.fps}

[Output]
Mode=Advanced

[AdvOut]
Encoder=obs_x264
TrackIndex=1
ApplyServiceSettings=true

[Audio]
SampleRate=48000
ChannelSetup=Stereo
`);
  writeFileSync(join(profile, 'streamEncoder.json'), JSON.stringify({ rate_control: 'CBR', bitrate: 1000, keyint_sec: 1, preset: 'veryfast', tune: 'zerolatency', profile: 'main' }));

  const display = freeDisplay();
  const xvfb = spawn('Xvfb', [`:${display}`, '-screen', '0', '1280x720x24', '-nolisten', 'tcp'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const xvfbLog = capture(xvfb);
  const obs: { child?: ChildProcess; log?: () => string } = {};
  const stopAll = async (): Promise<number[]> => {
    const left = [...(obs.child ? await endGroup(obs.child, 5_000) : []), ...(await endGroup(xvfb, 2_000))];
    rmSync(home, { recursive: true, force: true });
    return left;
  };
  try {
    await until('Xvfb to start', () => (existsSync(`/tmp/.X11-unix/X${display}`) ? true : xvfb.exitCode !== null ? Promise.reject(new Error(`Xvfb exited: ${xvfbLog()}`)) : undefined), 10_000);
    const child = spawn('obs', ['--disable-shutdown-check', '--websocket_ipv4_only', '--profile', 'Test', '--collection', 'Test'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, DISPLAY: `:${display}`, LIBGL_ALWAYS_SOFTWARE: '1', XDG_CONFIG_HOME: join(home, '.config') },
    });
    obs.child = child;
    const log = capture(child);
    obs.log = log;
    await until('obs-websocket to listen', () => (log().includes('Server started successfully') ? true : child.exitCode !== null ? Promise.reject(new Error(`OBS exited (${child.exitCode}):\n${log().slice(-3000)}`)) : undefined), 45_000);
    const socket = await connect(options.port, password);
    let next = 0;
    const waiting = new Map<string, { resolve(data: Record<string, unknown>): void; reject(error: Error): void }>();
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { op: number; d: { requestId: string; requestType: string; requestStatus: { result: boolean; code: number; comment?: string }; responseData?: Record<string, unknown> } };
      if (message.op !== 7) return;
      const pending = waiting.get(message.d.requestId);
      waiting.delete(message.d.requestId);
      const status = message.d.requestStatus;
      if (status.result) pending?.resolve(message.d.responseData ?? {});
      else pending?.reject(new Error(`obs-websocket ${message.d.requestType}: ${status.code} ${status.comment ?? ''}`));
    });
    socket.on('close', () => {
      for (const pending of waiting.values()) pending.reject(new Error('obs-websocket closed'));
      waiting.clear();
    });
    return {
      obs: child,
      xvfb,
      log,
      request(type, data = {}) {
        const requestId = String(++next);
        return new Promise((resolve, reject) => {
          waiting.set(requestId, { resolve, reject });
          socket.send(JSON.stringify({ op: 6, d: { requestType: type, requestId, requestData: data } }));
        });
      },
      async stop() {
        socket.close();
        return stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
