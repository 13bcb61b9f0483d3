import type { Readable, Writable } from 'node:stream';
import type { TargetSpec } from '@dbbackup/proto';

export interface TableStat {
  table: string;
  rows: number;
  exact: boolean;
}

export interface ConnectionInfo {
  serverVersion: string;
  toolVersion: string;
  toolPath: string;
}

export interface DumpHandle {
  stdout: Readable | null;
  /** Resolves when the tool exits 0; rejects with the tool's own error text otherwise. */
  done: Promise<void>;
  serverVersion: string;
  toolVersion: string;
  /** Row counts taken in the dump's own snapshot where the engine can (may settle while the dump runs). */
  tables: Promise<TableStat[]>;
  /** The source's size in bytes, where the engine knows it cheaply (sizes S3 upload parts). */
  sizeHint?: number;
  /** Recorded in the metadata as engineMeta and handed back to restore. */
  engineMeta?: Record<string, string>;
  /** The backup was committed (its meta.json written): what the next backup builds on may be kept. */
  committed?: (c: { backupId: string; metaKey: string }) => Promise<void>;
}

/** What a dump may ask of the job around it. */
export interface DumpAux {
  /** Whether an object (a meta.json) is in the backup's storage. */
  exists?: (objectKey: string) => Promise<boolean>;
}

export interface RestoreOptions {
  database: string;
  conflict: 'fail' | 'clean' | 'create';
  tables?: string[] | undefined;
  /** The backup's engineMeta. */
  engineMeta?: Record<string, string> | undefined;
}

export interface Mismatch {
  table: string;
  expected: number;
  actual: number | null;
}

/**
 * One database engine: everything engine-specific lives behind this interface,
 * so the pipeline (compression, encryption, hashing, storage) never changes
 * when an engine is added. Tools run with argument arrays, never a shell;
 * credentials reach them through the environment of the child only.
 */
export interface Engine {
  readonly id: TargetSpec['engine'];
  /** File-name extension of the native dump format, before compression and encryption. */
  readonly formatExtension: string;
  testConnection(target: TargetSpec): Promise<ConnectionInfo>;
  /**
   * Start the dump. With `into`, the tool writes straight into that pipe (another
   * child's stdin) and `stdout` is null: the bytes never pass through the agent.
   * An engine that must see its own output (in-process engines, or to count rows
   * from the stream) may ignore `into` and return `stdout`; the job feeds it on.
   */
  dump(target: TargetSpec, log: (m: string) => void, into?: Writable, aux?: DumpAux): Promise<DumpHandle>;
  /** Restores from a Readable in the agent's own process (never from a tool's stdin pipe). */
  readonly restoresInProcess?: boolean;
  /** Check that a decrypted, decompressed stream is a readable dump; returns its entry count. */
  list(input: Readable): Promise<{ entries: number }>;
  /**
   * Restore from `input`, or, when `input` is a function, call it with the tool's
   * stdin (a pipe the agent only writes to) so another child process can write
   * into it directly.
   */
  restore(
    target: TargetSpec,
    input: Readable | ((toolStdin: Writable) => void),
    o: RestoreOptions,
    log: (m: string) => void,
  ): Promise<void>;
  postRestoreCheck(
    target: TargetSpec,
    database: string,
    expected: TableStat[],
    tables?: string[],
  ): Promise<Mismatch[]>;
}
