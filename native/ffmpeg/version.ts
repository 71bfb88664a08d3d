/**
 * Whether ffmpeg runs on this host: `ffmpeg -version`, for a worker's
 * capability report. Spawned with an argument array; never rejects.
 */
import { spawn } from 'node:child_process';

/**
 * The first line of `ffmpeg -version` (`ffmpeg version 5.1.6-0+deb12u1 ...`),
 * or undefined when the binary is missing, fails or does not answer within
 * `timeoutMs`.
 */
export function ffmpegVersion(binary = 'ffmpeg', timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(binary, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      resolve(undefined);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (out.length < 4096) out += chunk.toString('utf8');
    });
    child.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? out.split('\n')[0].trim() || 'ffmpeg' : undefined);
    });
  });
}
