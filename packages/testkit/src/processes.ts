import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

/** Everything a test started, so that it can always be cleaned up, even after a failure. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const cleanups = new Set<() => Promise<void> | void>();

export function trackDir(dir: string) {
  dirs.add(dir);
  return dir;
}

export function onCleanup(fn: () => Promise<void> | void) {
  cleanups.add(fn);
}

export interface Proc {
  child: ChildProcess;
  /** Every line the process wrote to stdout or stderr. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startProcess(
  cmd: string,
  args: string[],
  { env, cwd }: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const onData = (prefix: string) => {
    let buf = '';
    return (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let i = buf.indexOf('\n');
      while (i >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
      }
      for (const w of waiters) w();
      if (process.env.TESTKIT_ECHO) process.stderr.write(`${prefix}${chunk}`);
    };
  };
  child.stdout?.on('data', onData(`[${cmd}] `));
  child.stderr?.on('data', onData(`[${cmd} !] `));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    child,
    lines,
    exited,
    waitForLine(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => re.test(l));
          if (hit !== undefined) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(hit);
          } else if (done) {
            waiters.delete(check);
            clearTimeout(t);
            reject(new Error(`${cmd} exited before printing ${re}; output:\n${lines.slice(-30).join('\n')}`));
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${re}; output:\n${lines.slice(-30).join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async kill(signal = 'SIGKILL') {
      if (!done) child.kill(signal);
      return exited;
    },
  };
}

export async function cleanupAll() {
  for (const fn of [...cleanups].reverse()) {
    await Promise.resolve(fn()).catch(() => {});
  }
  cleanups.clear();
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
