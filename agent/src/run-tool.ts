import { execFile } from 'node:child_process';

export interface ToolRun {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** It could not be started at all (not found, not executable). */
  notFound: boolean;
}

/**
 * Run a program with an argument array (no shell), stdin closed, bounded time and
 * output. For the agent's always-on paths (host facts, discovery): node's own
 * child_process keeps an idle agent from loading execa.
 */
export function runTool(file: string, args: string[], timeoutMs = 5000): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        resolve({
          exitCode: e ? (typeof e.code === 'number' ? e.code : undefined) : 0,
          stdout: String(stdout ?? ''),
          stderr: String(stderr ?? ''),
          notFound: e?.code === 'ENOENT' || e?.code === 'EACCES',
        });
      },
    );
    child.stdin?.end();
  });
}
