import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { joinKey, type StorageSpec } from '@dbbackup/proto';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import type { ObjectStore, ObjectWriter } from './object-store.js';

type S3Spec = Extract<StorageSpec, { kind: 's3' }>;

/** Transient failures are retried: 5 attempts, backoff from 2 s doubling. */
export const RETRY_ATTEMPTS = 5;

const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 ** 3;

/**
 * The part size for an upload: the profile's, or larger when the source is big
 * enough that the profile's would need more than S3's 10 000 parts. The source's
 * size (uncompressed) bounds the stored size (compressed, plus 16 bytes a MiB of
 * encryption), with headroom for the parts being whole.
 */
export function partSizeFor(profileBytes: number, expectedBytes: number | undefined): number {
  if (!expectedBytes || expectedBytes <= 0) return profileBytes;
  const needed = Math.ceil((expectedBytes * 1.05) / (MAX_PARTS * 0.9));
  const mib = 1024 * 1024;
  return Math.min(MAX_PART_BYTES, Math.max(profileBytes, Math.ceil(needed / mib) * mib));
}
export const RETRY_BASE_MS = 2000;

/**
 * S3-compatible storage. Large objects go up as a multipart upload of bounded
 * part size x queue (so memory does not grow with the database); a failed or
 * aborted upload is aborted on the server so no parts are left behind.
 */
/** Attempts beyond the first, from an SDK output's or error's metadata. */
const retried = (x: unknown) =>
  Math.max(0, ((x as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) - 1);

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  readonly #spec: S3Spec;
  readonly #client: S3Client;
  #retries = 0;

  constructor(spec: S3Spec, { retryBaseMs = RETRY_BASE_MS }: { retryBaseMs?: number } = {}) {
    this.#spec = spec;
    this.#client = new S3Client({
      region: spec.region,
      ...(spec.endpoint ? { endpoint: spec.endpoint } : {}),
      forcePathStyle: spec.forcePathStyle,
      ...(spec.credentials ? { credentials: spec.credentials } : {}),
      retryStrategy: new ConfiguredRetryStrategy(RETRY_ATTEMPTS, (attempt) => retryBaseMs * 2 ** attempt),
      // Checksums on by default in newer SDKs are not understood by every S3-compatible server.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // Count the SDK's retries (attempts beyond the first), for the job result and the metrics.
    this.#client.middlewareStack.add(
      (next) => async (args) => {
        try {
          const out = await next(args);
          this.#retries += retried(out.output);
          return out;
        } catch (err) {
          this.#retries += retried(err);
          throw err;
        }
      },
      { step: 'initialize', name: 'dbbackupRetryCount' },
    );
  }

  get retries() {
    return this.#retries;
  }

  key(relative: string) {
    return joinKey(this.#spec.prefix, relative);
  }

  async createWriter(
    key: string,
    onUploadId?: (uploadId: string) => void,
    expectedBytes?: number,
  ): Promise<ObjectWriter> {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#spec.bucket, Key: key, Body: body },
      partSize: partSizeFor(this.#spec.partSizeBytes, expectedBytes),
      queueSize: this.#spec.queueSize,
      leavePartsOnError: false,
    });
    // lib-storage keeps the multipart UploadId to itself; read it once the first part is under way.
    let reported = false;
    upload.on('httpUploadProgress', () => {
      const id = (upload as unknown as { uploadId?: string }).uploadId;
      if (id && !reported) {
        reported = true;
        onUploadId?.(id);
      }
    });
    const done = upload.done();
    done.catch(() => {});
    return {
      stream: body,
      commit: async () => {
        await done;
        const size = await this.size(key);
        if (size === undefined) throw new Error(`object ${key} is missing after upload`);
        return { sizeBytes: size };
      },
      abort: async () => {
        body.destroy();
        await upload.abort().catch(() => {});
        await done.catch(() => {});
        await this.cleanupUnfinished(key).catch(() => {});
      },
    };
  }

  async putSmall(key: string, body: Buffer) {
    await this.#client.send(
      new PutObjectCommand({
        Bucket: this.#spec.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
      }),
    );
  }

  async read(key: string): Promise<Readable> {
    const r = await this.#client.send(new GetObjectCommand({ Bucket: this.#spec.bucket, Key: key }));
    return r.Body as Readable;
  }

  async list(prefix: string) {
    const out: { key: string; size: number; modifiedAt: Date }[] = [];
    let token: string | undefined;
    for (let page = 0; ; page++) {
      if (page > 100_000) throw new Error('S3 listing did not end');
      const r = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#spec.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of r.Contents ?? [])
        if (o.Key)
          out.push({ key: o.Key, size: Number(o.Size ?? 0), modifiedAt: o.LastModified ?? new Date(0) });
      if (!r.IsTruncated) break;
      if (!r.NextContinuationToken)
        throw new Error(
          'S3 listing came back truncated without a continuation token: the listing is incomplete',
        );
      token = r.NextContinuationToken;
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async delete(key: string) {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#spec.bucket, Key: key }));
  }

  async size(key: string) {
    try {
      const r = await this.#client.send(new HeadObjectCommand({ Bucket: this.#spec.bucket, Key: key }));
      return r.ContentLength;
    } catch (err) {
      if (
        (err as { name?: string }).name === 'NotFound' ||
        (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
      ) {
        return undefined;
      }
      throw err;
    }
  }

  async cleanupUnfinished(key: string) {
    const r = await this.#client.send(
      new ListMultipartUploadsCommand({ Bucket: this.#spec.bucket, Prefix: key }),
    );
    let n = 0;
    for (const u of r.Uploads ?? []) {
      if (u.Key !== key || !u.UploadId) continue;
      await this.#client.send(
        new AbortMultipartUploadCommand({ Bucket: this.#spec.bucket, Key: key, UploadId: u.UploadId }),
      );
      n++;
    }
    return n;
  }
}
