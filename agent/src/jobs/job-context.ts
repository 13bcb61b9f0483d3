import type { StorageSpec } from '@dbbackup/proto';
import type { JWK } from 'jose';

/** What a job may use of the agent around it. */
export interface JobContext {
  agentId: string;
  /** The agent's own X25519 private key, to unwrap data keys re-wrapped to it. */
  encryptionKey: () => Promise<JWK>;
  /** An Ed25519 signature (base64url) with the agent's enrolled signing key (a meta.json's). */
  sign: (data: Buffer) => string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  progress: (phase: string, bytesIn: number, bytesOut: number) => void;
  /** Remember an unfinished upload so that a restart can abort it; forget it once committed or aborted. */
  recordUpload: (storage: StorageSpec, key: string, uploadId?: string) => Promise<void>;
  clearUpload: () => Promise<void>;
  /** Fault injection for the tests (DBBACKUP_TEST_CRASH_POINT): `before-meta` kills the agent between the data object and its commit marker. */
  crashPoint?: string | undefined;
  /** Set when the job's events could not be recorded (the state directory is full). */
  storageFault?: () => Error | undefined;
  /** Where a drill makes its scratch files and directories (under the state directory). */
  drillsDir?: string;
  /** Free bytes where a drill would write (a test may inject the figure: DBBACKUP_TEST_FREE_BYTES). */
  freeBytes?: (dir: string) => Promise<number>;
  /** Remember a drill's scratch destination so that a restart removes it; forget it once removed. */
  recordScratch?: (scratch: unknown) => Promise<void>;
  clearScratch?: () => Promise<void>;
}

/** Call `fn` every `ms` until stopped. */
export function every(ms: number, fn: () => void) {
  const t = setInterval(fn, ms);
  t.unref();
  return () => clearInterval(t);
}
