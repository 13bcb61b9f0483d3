import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import type { ChildExit } from '../pipeline/child-exit.js';
import { hostSecrets, SecretRefused } from '../secrets/host-secrets.js';
import { feedTool } from './tool-feed.js';

export interface FoundTool {
  name: string;
  path: string;
  version: string;
}

const toolCache = new Map<string, FoundTool>();

/** The first of `names` on PATH that runs `--version`; a clear error naming what to install otherwise. */
export async function firstTool(
  names: string[],
  engine: string,
  versionArg = '--version',
): Promise<FoundTool> {
  for (const name of names) {
    const key = `${name} ${versionArg}`;
    let found = toolCache.get(key);
    if (found === undefined) {
      for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
        const file = path.join(dir, name);
        const r = await execa(file, [versionArg], { reject: false, timeout: 5000, stdin: 'ignore' });
        if (r.exitCode === 0) {
          found = {
            name,
            path: file,
            version: `${r.stdout}\n${r.stderr}`.trim().split('\n')[0]!.slice(0, 200),
          };
          break;
        }
      }
      // A tool not found is looked for again next time: it may have been installed since.
      if (found) toolCache.set(key, found);
    }
    if (found) return found;
  }
  throw new AgentError(
    'tool-missing',
    `no ${names.join(' or ')} on this host's PATH: install the ${engine} client tools`,
  );
}

/** A tool's failure as an AgentError carrying the tool's own last lines of stderr. */
export function toolError(
  tool: string,
  r: { exitCode?: number | null | undefined; signal?: string | null | undefined; stderr?: unknown },
  code = 'tool-failed',
): AgentError {
  const stderr = String(r.stderr ?? '')
    .trim()
    .split('\n')
    .slice(-20)
    .join('\n');
  return new AgentError(
    code,
    `${tool} failed (${r.signal ?? `exit ${r.exitCode}`}): ${stderr || 'no error output'}`,
  );
}

/**
 * Give a restore tool its input: either the job's Readable (fed with
 * backpressure, drained to the end so every segment is authenticated), or a
 * function that connects another child (zstd -d) straight to the tool's stdin.
 */
export async function feedInto(
  input: Readable | ((toolStdin: Writable) => void),
  stdin: Writable,
  exited: Promise<ChildExit>,
): Promise<void> {
  stdin.on('error', () => {});
  if (typeof input === 'function') {
    try {
      input(stdin);
    } finally {
      // The writer holds its own copy of the pipe; ours is closed so the tool sees the end.
      stdin.destroy();
    }
    return;
  }
  // If the tool dies, stop waiting on its stdin; the exit status tells why.
  await Promise.race([feedTool(input, stdin), exited.then(() => input.resume())]);
}

/**
 * Reads a text dump to its end, keeping its first and last bytes and counting
 * marker strings (across chunk boundaries) without holding the dump.
 */
export class DumpScanner {
  head = '';
  #tail: Buffer = Buffer.alloc(0);
  readonly counts: number[];
  bytes = 0;
  readonly #needles: Buffer[];
  #carry: Buffer = Buffer.alloc(0);

  constructor(
    needles: string[],
    readonly keep = 512,
  ) {
    this.#needles = needles.map((n) => Buffer.from(n));
    this.counts = needles.map(() => 0);
  }

  update(chunk: Buffer) {
    this.bytes += chunk.length;
    if (this.head.length < this.keep) this.head += chunk.subarray(0, this.keep).toString('latin1');
    const longest = Math.max(...this.#needles.map((n) => n.length));
    const buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    // A match must end inside the new chunk, or it was counted already.
    const start = this.#carry.length;
    this.#needles.forEach((n, i) => {
      let at = buf.indexOf(n, Math.max(0, start - n.length + 1));
      while (at >= 0) {
        this.counts[i]!++;
        at = buf.indexOf(n, at + n.length);
      }
    });
    this.#carry = Buffer.from(buf.subarray(Math.max(0, buf.length - longest + 1)));
    const last = Buffer.concat([this.#tail, chunk.subarray(Math.max(0, chunk.length - this.keep))]);
    this.#tail = Buffer.from(last.subarray(Math.max(0, last.length - this.keep)));
  }

  /** The last bytes of the dump (latin1). */
  get tail(): string {
    return this.#tail.toString('latin1');
  }

  async consume(input: Readable): Promise<void> {
    await pipeline(
      input,
      new Writable({
        highWaterMark: 1024 * 1024,
        write: (chunk: Buffer, _e, cb) => {
          this.update(chunk);
          cb();
        },
      }),
    );
  }
}

const helpCache = new Map<string, Promise<string>>();

/** Whether a client program's --help lists an option (asked once per program path). */
export async function clientHas(toolPath: string, option: string): Promise<boolean> {
  let help = helpCache.get(toolPath);
  if (!help) {
    help = execa(toolPath, ['--no-defaults', '--help'], {
      reject: false,
      timeout: 10_000,
      stdin: 'ignore',
    }).then(
      (r) => `${r.stdout}\n${r.stderr}`,
      () => '',
    );
    helpCache.set(toolPath, help);
  }
  return (await help).includes(option);
}

/**
 * The password a target's secret reference gives, checked by the host's own
 * declarations (bound destinations; legacy references only as bound at upgrade).
 * A refusal is an AgentError, raised before anything connects anywhere.
 */
export function secretPassword(t: TargetSpec): string | undefined {
  try {
    return hostSecrets().passwordFor(t);
  } catch (err) {
    if (err instanceof SecretRefused) throw new AgentError('secret-refused', err.message);
    throw err;
  }
}

/**
 * The target's password as this host lets it go: a declared secret, only to a destination it
 * is bound to; for a target from before 0.1.2 that names an environment variable, that variable.
 */
export function targetPassword(t: TargetSpec): string | undefined {
  const declared = secretPassword(t);
  const s = t.secretRef;
  if (s.kind !== 'env') return declared;
  const v = process.env[s.name];
  if (v === undefined)
    throw new AgentError('secret-missing', `environment variable ${s.name} is not set on the agent host`);
  return v;
}
