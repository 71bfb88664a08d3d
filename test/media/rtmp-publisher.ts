/**
 * ffmpeg as an RTMP publisher for media tests: testsrc2 and sine, small and
 * fast, spawned with argument arrays and always killable.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Publisher {
  child: ChildProcess;
  /** Resolves with the exit code and how long after the spawn ffmpeg exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string }>;
}

/** Publishes `seconds` of 320x240@30 video (keyframe every 30 frames) and/or a sine to `url`, in real time. */
export function publish(url: string, options: { seconds: number; video?: boolean; audio?: boolean }): Publisher {
  const video = options.video ?? true;
  const audio = options.audio ?? true;
  const args = ['-v', 'error', '-nostdin', '-re'];
  if (video) args.push('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30');
  if (audio) args.push('-f', 'lavfi', '-i', 'sine');
  args.push('-t', String(options.seconds));
  if (video) args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-keyint_min', '30', '-sc_threshold', '0');
  if (audio) args.push('-c:a', 'aac');
  args.push('-f', 'flv', url);
  const started = Date.now();
  const child = spawn('nice', ['-n', '10', 'ffmpeg', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - started, stderr }));
  });
  return { child, exited };
}
