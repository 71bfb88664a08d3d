/**
 * Child processes of the test process, read from /proc: how the media tests
 * show that every ffmpeg they started has exited and been reaped (a zombie
 * is still a child, in state `Z`).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One child: its pid, command name and state letter (`Z` for a zombie). */
export interface ChildInfo {
  pid: number;
  name: string;
  state: string;
}

/** The processes whose parent is `parent` (this process unless told). */
export function childProcesses(parent = process.pid): ChildInfo[] {
  const children: ChildInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it exited between the listing and the read
    }
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so split after the last `)`.
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === parent) children.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, close), state });
  }
  return children;
}

/** The children named `name` (`ffmpeg`). */
export function childrenNamed(name: string): ChildInfo[] {
  return childProcesses().filter((child) => child.name === name);
}

/** Waits until no child named `name` is left (reaping is asynchronous), or `ms` passes; returns those left. */
export async function settleChildren(name: string, ms = 3000): Promise<ChildInfo[]> {
  const until = Date.now() + ms;
  let left = childrenNamed(name);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    left = childrenNamed(name);
  }
  return left;
}
