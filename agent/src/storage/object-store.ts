import type { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { StorageSpec } from '@dbbackup/proto';

export interface ObjectWriter {
  /** Where the object's bytes go; backpressure flows back through it. */
  stream: Writable;
  /** Resolves with the stored size once the object is complete and durable. */
  commit(): Promise<{ sizeBytes: number }>;
  /** Remove every trace of the unfinished object (multipart upload, temporary file). */
  abort(): Promise<void>;
}

/** Object storage as the pipeline sees it: write a large object, put small ones, read back. */
export interface ObjectStore {
  readonly kind: StorageSpec['kind'];
  /** Requests retried after a transient error so far (S3's backoff); 0 for local disk. */
  readonly retries: number;
  /** The full key for a path below the profile's prefix. */
  key(relative: string): string;
  /** `expectedBytes`: how big the source is, if known (S3 picks a part size that fits it). */
  createWriter(
    key: string,
    onUploadId?: (uploadId: string) => void,
    expectedBytes?: number,
  ): Promise<ObjectWriter>;
  putSmall(key: string, body: Buffer): Promise<void>;
  read(key: string): Promise<Readable>;
  /**
   * The object's bytes through one reused buffer, for a reader that is done with each
   * chunk before asking for the next (a store that can; a restore's check falls back to `read`).
   */
  readReused?(key: string): AsyncIterable<Buffer>;
  size(key: string): Promise<number | undefined>;
  /** Abort unfinished uploads left behind for this key (after a crash). Returns how many. */
  cleanupUnfinished(key: string): Promise<number>;
  /**
   * Every committed object under a key prefix, with its size. Throws when the listing
   * fails or comes back truncated: a caller deciding what to delete must see all of it.
   */
  list(prefix: string): Promise<{ key: string; size: number; modifiedAt: Date }[]>;
  delete(key: string): Promise<void>;
}

/** A small object (a meta.json) read whole. */
export async function readAll(store: ObjectStore, key: string): Promise<Buffer> {
  return buffer(await store.read(key));
}
