import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  type AgentEventBody,
  type StorageSpec,
  type TargetSpec,
  WAL_HISTORY_NAME,
  WAL_SEGMENT_NAME,
  type WalStatus,
} from '@dbbackup/proto';
import { client } from '../engines/postgres-client.js';
import { checkPhysicalPrerequisites } from '../engines/postgres-prereqs.js';
import { pickTool } from '../engines/postgres-tools.js';
import { openStore } from '../storage/open-store.js';
import type { AgentStore } from '../store/agent-store.js';
import { WalReceiver } from './wal-receiver.js';
import { uploadWalFile, type WalUploadContext } from './wal-upload.js';

export interface WalArchiverOptions {
  agentId: string;
  stateDir: string;
  target: TargetSpec;
  storage: StorageSpec;
  naming: { env: string; agentName: string };
  kek: { kid: string; publicJwk: Record<string, string> };
  store: AgentStore;
  /** Records an event in the outbox and sends it when the link is up. */
  emit: (e: AgentEventBody) => Promise<void>;
  log: (level: 'info' | 'warn', m: string) => void;
  spoolLimitBytes: number;
  /** How often the spool is looked at (ms). */
  scanMs?: number;
}

/** The replication slot an archiver uses for a target. */
export function slotName(targetId: string): string {
  return `dbbackup_${targetId.replace(/-/g, '').slice(0, 20)}`;
}

/**
 * Continuous WAL archiving for one physical target: the receiver fills the spool, and
 * every completed file is uploaded in order, reported (wal.archived) and only then
 * removed. The newest uploaded segment stays in the spool so a restarted pg_receivewal
 * continues after it. Every `walSwitchSeconds` the server is asked to complete its current
 * segment (pg_switch_wal), which bounds the RPO of a quiet database. A spool past its
 * limit pauses the receiver (the slot then keeps WAL on the server) until it drains.
 */
export class WalArchiver {
  readonly #o: WalArchiverOptions;
  readonly #spool: string;
  #receiver: WalReceiver | undefined;
  #ctx: WalUploadContext | undefined;
  #timers: NodeJS.Timeout[] = [];
  #busy = false;
  #stopped = false;
  #lastArchived: string | null = null;
  #uploadError: string | null = null;
  #switchError: string | null = null;
  #slotRetained: number | null = null;
  #spoolFiles = 0;
  #spoolBytes = 0;
  #lastStatus = '';

  constructor(o: WalArchiverOptions) {
    this.#o = o;
    this.#spool = path.join(o.stateDir, 'wal', o.target.id);
  }

  get key(): string {
    return JSON.stringify([this.#o.target, this.#o.storage, this.#o.naming, this.#o.kek.kid]);
  }

  async start() {
    const { target } = this.#o;
    await mkdir(this.#spool, { recursive: true, mode: 0o700 });
    this.#lastArchived = (await this.#o.store.getMeta(this.#lastKey)) ?? null;
    const facts = await checkPhysicalPrerequisites(target);
    const tool = await pickTool('pg_receivewal', facts.major);
    this.#ctx = {
      agentId: this.#o.agentId,
      targetId: target.id,
      targetName: target.name,
      naming: this.#o.naming,
      kek: this.#o.kek,
      storage: this.#o.storage,
      store: await openStore(this.#o.storage),
      systemIdentifier: facts.systemIdentifier,
      segmentBytes: facts.walSegmentBytes,
    };
    this.#receiver = new WalReceiver({
      target,
      tool: tool.path,
      spool: this.#spool,
      pidFile: path.join(this.#o.stateDir, 'wal', `${target.id}.receiver.pid`),
      slot: slotName(target.id),
      log: this.#o.log,
    });
    await this.#receiver.start();
    this.#o.log('info', `archiving WAL of ${target.name} on slot ${slotName(target.id)}`);
    this.#every(this.#o.scanMs ?? 1000, () => this.#drain());
    this.#every((target.options.walSwitchSeconds ?? 60) * 1000, () => this.#switchAndMeasure());
    this.#every(60_000, () => this.#report(true));
  }

  async stop() {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    await this.#receiver?.stop();
  }

  get #lastKey() {
    return `wal_last:${this.#o.target.id}`;
  }

  #every(ms: number, fn: () => Promise<void>) {
    const t = setInterval(() => void fn().catch((err) => this.#o.log('warn', String(err))), ms);
    t.unref();
    this.#timers.push(t);
  }

  /** Upload every completed file in order; stop at the first failure (retried next time). */
  async #drain() {
    if (this.#busy || this.#stopped || !this.#ctx) return;
    this.#busy = true;
    try {
      const pending = await this.#pending();
      for (const name of pending) {
        if (this.#stopped) break;
        try {
          const archived = await uploadWalFile(this.#ctx, path.join(this.#spool, name));
          await this.#o.emit(archived);
          if (WAL_SEGMENT_NAME.test(name)) {
            await this.#o.store.setMeta(this.#lastKey, name);
            this.#lastArchived = name;
          } else await rm(path.join(this.#spool, name), { force: true });
          this.#uploadError = null;
        } catch (err) {
          this.#uploadError = `uploading ${name}: ${(err as Error).message}`;
          break;
        }
      }
      await this.#tidy();
      await this.#report(false);
    } finally {
      this.#busy = false;
    }
  }

  /** Completed files not yet uploaded, oldest first (history files before the segments of their timeline). */
  async #pending(): Promise<string[]> {
    const names = await readdir(this.#spool).catch(() => [] as string[]);
    const last = this.#lastArchived;
    const segments = names.filter((n) => WAL_SEGMENT_NAME.test(n) && (!last || n > last));
    const history = names.filter((n) => WAL_HISTORY_NAME.test(n));
    return [...history, ...segments].sort();
  }

  /** Remove uploaded segments but the newest; account the spool; pause or resume the receiver. */
  async #tidy() {
    const names = (await readdir(this.#spool).catch(() => [] as string[])).sort();
    let files = 0;
    let bytes = 0;
    for (const n of names) {
      const p = path.join(this.#spool, n);
      if (WAL_SEGMENT_NAME.test(n) && this.#lastArchived && n < this.#lastArchived) {
        await rm(p, { force: true });
        continue;
      }
      if (WAL_SEGMENT_NAME.test(n) && n === this.#lastArchived) continue;
      files++;
      bytes += (await stat(p).catch(() => undefined))?.size ?? 0;
    }
    this.#spoolFiles = files;
    this.#spoolBytes = bytes;
    if (bytes > this.#o.spoolLimitBytes) this.#receiver?.pause();
    else if (bytes < this.#o.spoolLimitBytes * 0.8) this.#receiver?.resume();
  }

  /** Complete the server's current segment (a no-op when nothing was written), and read the slot's backlog. */
  async #switchAndMeasure() {
    const cl = await client(this.#o.target).catch(() => undefined);
    if (!cl) return;
    try {
      await cl.query('SELECT pg_switch_wal()');
      this.#switchError = null;
    } catch (err) {
      this.#switchError = `pg_switch_wal() failed (${(err as Error).message}): grant it with GRANT EXECUTE ON FUNCTION pg_switch_wal() TO ${this.#o.target.connection.user ?? 'the backup role'}; until then a quiet database's RPO is bounded by archive_timeout`;
    }
    try {
      const r = await cl.query<{ b: string | null }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS b FROM pg_replication_slots WHERE slot_name = $1',
        [slotName(this.#o.target.id)],
      );
      this.#slotRetained = r.rows[0]?.b == null ? null : Number(r.rows[0].b);
    } finally {
      await cl.end().catch(() => {});
    }
  }

  status(): WalStatus {
    const paused = this.#spoolBytes > this.#o.spoolLimitBytes;
    const error =
      (paused
        ? `the WAL spool holds ${this.#spoolBytes} bytes, past its limit of ${this.#o.spoolLimitBytes} (DBBACKUP_WAL_SPOOL_MAX_BYTES): receiving is paused and the server keeps WAL for the slot`
        : null) ??
      this.#uploadError ??
      (this.#receiver?.running ? null : this.#receiver?.lastError) ??
      this.#switchError;
    return {
      type: 'wal.status',
      targetId: this.#o.target.id,
      receiving: this.#receiver?.running ?? false,
      spoolFiles: this.#spoolFiles,
      spoolBytes: this.#spoolBytes,
      spoolLimitBytes: this.#o.spoolLimitBytes,
      slotRetainedBytes: this.#slotRetained,
      lastArchived: this.#lastArchived,
      error: error ?? null,
      at: new Date().toISOString(),
    };
  }

  /** A status event when something other than the time changed, or every minute when `always`. */
  async #report(always: boolean) {
    const s = this.status();
    const sig = JSON.stringify({ ...s, at: '' });
    if (!always && sig === this.#lastStatus) return;
    this.#lastStatus = sig;
    await this.#o.emit(s);
  }
}
