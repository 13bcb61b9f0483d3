import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { TargetSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { client, libpqEnv } from '../engines/postgres-client.js';

/**
 * pg_receivewal on the archiver's replication slot, writing completed segments into the
 * spool. The slot makes the server keep every segment the receiver has not confirmed, so
 * nothing is lost while the agent is down; the receiver is restarted (with a growing
 * pause) whenever it exits. A receiver left running by an agent killed with -9 is found
 * by its pid file and stopped before a new one starts.
 */
export class WalReceiver {
  #child: ChildProcess | undefined;
  #stopped = false;
  #paused = false;
  #restarts = 0;
  #timer: NodeJS.Timeout | undefined;
  lastError: string | null = null;

  constructor(
    private readonly o: {
      target: TargetSpec;
      tool: string;
      spool: string;
      pidFile: string;
      slot: string;
      log: (level: 'info' | 'warn', m: string) => void;
    },
  ) {}

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null;
  }

  async start() {
    await this.#stopStale();
    await this.#createSlot();
    this.#spawn();
  }

  /** Stop receiving while the spool is full (the slot keeps the WAL on the server meanwhile). */
  pause() {
    if (this.#paused) return;
    this.#paused = true;
    this.#child?.kill('SIGTERM');
  }

  resume() {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.running && !this.#timer) this.#spawn();
  }

  async stop() {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const child = this.#child;
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(this.o.pidFile, { force: true });
  }

  async #createSlot() {
    const r = await execa(
      this.o.tool,
      ['--create-slot', '--if-not-exists', `--slot=${this.o.slot}`, '--no-password'],
      {
        env: { ...process.env, ...libpqEnv(this.o.target) },
        reject: false,
        timeout: 30_000,
        stdin: 'ignore',
      },
    );
    if (r.exitCode !== 0)
      throw new Error(`cannot create replication slot ${this.o.slot}: ${r.stderr.trim()}`);
  }

  #spawn() {
    if (this.#stopped || this.#paused) return;
    const args = ['-D', this.o.spool, `--slot=${this.o.slot}`, '--no-loop', '--synchronous', '--no-password'];
    const child = spawn(this.o.tool, args, {
      env: { ...process.env, ...libpqEnv(this.o.target) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child = child;
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4096);
    });
    const started = Date.now();
    if (child.pid) void writeFile(this.o.pidFile, String(child.pid)).catch(() => {});
    child.once('error', (err) => {
      this.lastError = `pg_receivewal: ${err.message}`;
    });
    child.once('close', (code, signal) => {
      this.#child = undefined;
      if (this.#stopped || this.#paused) return;
      this.lastError = `pg_receivewal exited (${signal ?? `exit ${code}`}): ${stderr.trim().slice(-1000)}`;
      this.o.log('warn', this.lastError);
      if (/is active for PID (\d+)/.test(stderr)) void this.#releaseSlot();
      // A receiver that ran a while starts again at once; one that keeps failing waits up to 30 s.
      this.#restarts = Date.now() - started > 60_000 ? 0 : this.#restarts + 1;
      const wait = Math.min(30_000, 500 * 2 ** Math.min(this.#restarts, 6));
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#spawn();
      }, wait);
    });
  }

  /** A receiver from before a crash of this agent, found by its pid file: stopped. */
  async #stopStale() {
    const pid = Number((await readFile(this.o.pidFile, 'utf8').catch(() => '')).trim());
    if (!pid) return;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes('pg_receivewal') || !cmdline.includes(this.o.spool)) return;
    this.o.log('info', `stopping pg_receivewal (pid ${pid}) left running by an earlier agent process`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 50 && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')); i++)
      await new Promise((r) => setTimeout(r, 100));
  }

  /** The slot held by a receiver this agent no longer knows (its pid file lost): that session is ended. */
  async #releaseSlot() {
    const cl = await client(this.o.target).catch(() => undefined);
    if (!cl) return;
    try {
      await cl.query(
        'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL',
        [this.o.slot],
      );
    } catch {
      // Reported by the next attempt's error.
    } finally {
      await cl.end().catch(() => {});
    }
  }
}
