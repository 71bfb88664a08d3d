/**
 * Real hosts on one machine: a private bridge and one Linux network
 * namespace per host, each joined to the bridge by a veth pair, with
 * addresses from a 10.231.X.0/24 that only this run uses. Processes run
 * inside a host's namespace (`run`), and a host's link can be cut and
 * restored (`cut`, `restore`): its bridge-side veth goes down, so packets
 * are dropped and its TCP connections stall, as on a real network failure.
 *
 * The services (Kafka, Redis) listen on the root namespace's 127.0.0.1, and
 * Kafka advertises 127.0.0.1:PORT; each namespace gets a forwarder that
 * listens on its own 127.0.0.1:PORT and sends to the bridge address, where an
 * in-process forwarder (bound to the bridge address only) hands over to the
 * root's 127.0.0.1:PORT. Needs root and `ip` (iproute2).
 *
 * Every name starts with `amis<pid>-`: a run removes what a crashed earlier
 * run (a pid no longer alive) left behind, and `teardown` (also on process
 * exit) removes all of its own.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { forwardPorts, type Forwarders } from './netns-forward.ts';

const prefix = 'amis';
const forwarderScript = new URL('./netns-forward.ts', import.meta.url).pathname;

/** One host: its namespace, its address on the bridge, its veth pair. */
export interface NetnsHost {
  name: string;
  namespace: string;
  address: string;
  /** The bridge-side end of the veth pair: the one `cut` takes down. */
  outerLink: string;
}

/** A set of namespaces on one private bridge. */
export interface Netns {
  hosts: Map<string, NetnsHost>;
  /** The root side's address on the bridge. */
  bridgeAddress: string;
  /** Spawns `argv` inside the host's namespace (argv[0] is the program). */
  run(host: string, argv: string[], options?: SpawnOptions): ChildProcess;
  /** Takes the host's link down: its packets are dropped until `restore`. */
  cut(host: string): void;
  restore(host: string): void;
  /** Kills what `run` started and removes the namespaces, the bridge and the forwarders. */
  teardown(): Promise<void>;
}

/** Settings of `createNetns`. */
export interface NetnsOptions {
  hosts: string[];
  /** Root-loopback TCP ports reachable at the same 127.0.0.1:PORT inside every namespace. */
  forward: number[];
}

function ip(...args: string[]): string {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`ip ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and links named `amis<pid>-…` whose pid is no longer running (a crashed earlier run). */
export function removeStale(): string[] {
  const removed: string[] = [];
  const stale = (name: string) => {
    const match = new RegExp(`^${prefix}(\\d+)-`).exec(name);
    return match !== null && Number(match[1]) !== process.pid && !alive(Number(match[1]));
  };
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    if (name && stale(name)) {
      spawnSync('ip', ['netns', 'del', name]);
      removed.push(name);
    }
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name && stale(name)) {
      spawnSync('ip', ['link', 'del', name]);
      removed.push(name);
    }
  }
  return removed;
}

/** A 10.231.X.0/24 that no route on this machine uses yet. */
function freeSubnet(): string {
  const routes = ip('-4', 'route', 'show');
  for (let i = 0; i < 250; i++) {
    const x = ((process.pid + i) % 250) + 1;
    if (!routes.includes(`10.231.${x}.`)) return `10.231.${x}`;
  }
  throw new Error('no free 10.231.X.0/24 subnet');
}

/**
 * Creates a bridge and one namespace per host, with loopback up, an address
 * each, and the forwarders of `options.forward` running. Call `teardown`
 * (an `afterAll`) when done; it also runs on process exit.
 */
export async function createNetns(options: NetnsOptions): Promise<Netns> {
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root');
  if (options.hosts.length > 26) throw new Error('at most 26 hosts');
  removeStale();
  const tag = `${prefix}${process.pid}`;
  const bridge = `${tag}-br`;
  const subnet = freeSubnet();
  const bridgeAddress = `${subnet}.1`;
  const hosts = new Map<string, NetnsHost>();
  const children = new Set<ChildProcess>();
  let rootForwarders: Forwarders | undefined;
  let tornDown = false;

  const removeAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const host of hosts.values()) spawnSync('ip', ['netns', 'del', host.namespace]);
    spawnSync('ip', ['link', 'del', bridge]);
  };
  const onExit = () => removeAll();
  process.once('exit', onExit);

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${bridgeAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    options.hosts.forEach((name, i) => {
      const letter = String.fromCharCode(97 + i);
      const host: NetnsHost = { name, namespace: `${tag}-${letter}`, address: `${subnet}.${10 + i}`, outerLink: `${tag}-${letter}0` };
      const inner = `${tag}-${letter}1`;
      hosts.set(name, host);
      ip('netns', 'add', host.namespace);
      ip('link', 'add', host.outerLink, 'type', 'veth', 'peer', 'name', inner);
      ip('link', 'set', inner, 'netns', host.namespace);
      ip('link', 'set', host.outerLink, 'master', bridge);
      ip('link', 'set', host.outerLink, 'up');
      ip('-n', host.namespace, 'link', 'set', 'lo', 'up');
      ip('-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', inner);
      ip('-n', host.namespace, 'link', 'set', inner, 'up');
    });
    rootForwarders = await forwardPorts(bridgeAddress, '127.0.0.1', options.forward);
  } catch (error) {
    removeAll();
    process.off('exit', onExit);
    throw error;
  }

  const hostOf = (name: string): NetnsHost => {
    const host = hosts.get(name);
    if (!host) throw new Error(`no host \`${name}\` in this netns set (${[...hosts.keys()].join(', ')})`);
    return host;
  };

  const run = (name: string, argv: string[], spawnOptions: SpawnOptions = {}): ChildProcess => {
    // `ip netns exec` execs the program after entering the namespace: the child's pid is the program's.
    const child = spawn('ip', ['netns', 'exec', hostOf(name).namespace, ...argv], spawnOptions);
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    const exits = [...children].map((child) => once(child, 'exit'));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(exits);
    await rootForwarders?.close();
    removeAll();
    process.off('exit', onExit);
  };

  // Each namespace's own forwarder, started before the caller runs anything there.
  for (const host of hosts.values()) {
    const forwarder = run(host.name, [process.execPath, forwarderScript, '127.0.0.1', bridgeAddress, ...options.forward.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    forwarder.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      const exited = () => reject(new Error(`the forwarder in ${host.namespace} exited: ${stderr.trim()}`));
      forwarder.once('exit', exited);
      forwarder.stdout!.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('ready')) return;
        forwarder.off('exit', exited);
        resolve();
      });
    }).catch(async (error: Error) => {
      await teardown();
      throw error;
    });
  }

  return {
    hosts,
    bridgeAddress,
    run,
    cut: (name) => void ip('link', 'set', hostOf(name).outerLink, 'down'),
    restore: (name) => void ip('link', 'set', hostOf(name).outerLink, 'up'),
    teardown,
  };
}
