import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { onCleanup, trackDir } from './processes.js';

export interface S3Server {
  endpoint: string;
  bucket: string;
  directory: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Multipart uploads started and neither completed nor aborted, read from s3rver's own store. */
  pendingUploads(): { uploadId: string; key: string }[];
  /**
   * Fault injection for object listings (ListObjects/ListObjectsV2): 'error' answers
   * 500 InternalError; 'truncated' answers an empty page marked IsTruncated with no
   * continuation token. null serves listings normally.
   */
  faults: {
    list: 'error' | 'truncated' | null;
    /** The next this many object writes (PutObject, UploadPart) answer 503 SlowDown, a transient error clients retry. */
    putErrors: number;
    /** Until this time (epoch ms) every object write (PUT, POST of a multipart upload) answers 503. */
    refuseWritesUntil: number;
  };
  close(): Promise<void>;
}

type KoaCtx = {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
  type: string;
};

/**
 * s3rver (a real S3 protocol server from npm) on 127.0.0.1. s3rver 3.7 does not
 * implement ListMultipartUploads or AbortMultipartUpload; both are added here
 * on top of its own filesystem store, path-style only, so that the agent's
 * cleanup of interrupted uploads runs against it as it would against S3.
 */
export async function startS3(bucket = 'dbbackup-test'): Promise<S3Server> {
  const directory = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-s3-')));
  const accessKeyId = 'S3RVER';
  const secretAccessKey = 'S3RVER';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    silent: true,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const uploads = uploadsOf(directory);
  const app = server as unknown as {
    middleware: ((ctx: KoaCtx, next: () => Promise<void>) => Promise<void>)[];
  };
  const faults: S3Server['faults'] = { list: null, putErrors: 0, refuseWritesUntil: 0 };
  app.middleware.unshift((ctx, next) => s3Additions(ctx, next, faults, uploads));
  const addr = (await server.run()) as unknown as { address: string; port: number };
  const close = async () => {
    await server.close();
  };
  onCleanup(close);
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    bucket,
    directory,
    accessKeyId,
    secretAccessKey,
    pendingUploads: () => uploads.list(bucket),
    faults,
    close,
  };
}

/** The multipart uploads s3rver keeps on disk, per bucket (none when it has not made the folder). */
function uploadsOf(directory: string) {
  const dir = (b: string) => path.join(directory, b, '._S3rver_uploads');
  return {
    dir,
    list(b: string) {
      try {
        return readdirSync(dir(b), { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => ({ uploadId: d.name, key: readFileSync(path.join(dir(b), d.name, 'key'), 'utf8') }));
      } catch {
        return [];
      }
    },
  };
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

/**
 * What s3rver lacks, and the faults a test injects: ListMultipartUploads, AbortMultipartUpload,
 * failing PUTs (SlowDown), and a failing or truncated listing.
 */
async function s3Additions(
  ctx: KoaCtx,
  next: () => Promise<void>,
  faults: S3Server['faults'],
  uploads: ReturnType<typeof uploadsOf>,
) {
  const parts = ctx.path.split('/').filter(Boolean);
  const b = parts[0];
  const isObjectList =
    ctx.method === 'GET' &&
    b &&
    parts.length === 1 &&
    !('uploads' in ctx.query) &&
    !('location' in ctx.query);
  if (
    (ctx.method === 'PUT' || ctx.method === 'POST') &&
    b &&
    parts.length > 1 &&
    Date.now() < faults.refuseWritesUntil
  ) {
    ctx.status = 503;
    ctx.type = 'application/xml';
    ctx.body = xmlError('ServiceUnavailable', 'injected: storage refuses writes');
    return;
  }
  if (ctx.method === 'PUT' && b && parts.length > 1 && faults.putErrors > 0) {
    faults.putErrors--;
    ctx.status = 503;
    ctx.type = 'application/xml';
    ctx.body = xmlError('SlowDown', 'injected: please reduce your request rate');
    return;
  }
  if (isObjectList && faults.list === 'error') {
    ctx.status = 500;
    ctx.type = 'application/xml';
    ctx.body = xmlError('InternalError', 'injected listing failure');
    return;
  }
  if (isObjectList && faults.list === 'truncated') {
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${b}</Name><Prefix>${escapeXml(ctx.query.prefix ?? '')}</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated></ListBucketResult>`;
    return;
  }
  if (ctx.method === 'GET' && b && parts.length === 1 && 'uploads' in ctx.query) {
    const prefix = ctx.query.prefix ?? '';
    const pending = uploads.list(b).filter((u) => u.key.startsWith(prefix));
    ctx.type = 'application/xml';
    ctx.body =
      `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${b}</Bucket><IsTruncated>false</IsTruncated>` +
      pending
        .map((u) => `<Upload><Key>${escapeXml(u.key)}</Key><UploadId>${u.uploadId}</UploadId></Upload>`)
        .join('') +
      '</ListMultipartUploadsResult>';
    return;
  }
  const uploadId = ctx.query.uploadId;
  if (ctx.method === 'DELETE' && b && parts.length > 1 && uploadId && /^[A-Za-z0-9_-]+$/.test(uploadId)) {
    rmSync(path.join(uploads.dir(b), uploadId), { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  await next();
}

function escapeXml(s: string) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
