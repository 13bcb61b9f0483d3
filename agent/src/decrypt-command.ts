import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupMeta } from '@dbbackup/proto';
import type { JWK } from 'jose';
import { decompressor } from './pipeline/compression.js';
import { unwrapDataKey } from './pipeline/data-key.js';
import { DecryptStream } from './pipeline/decrypt-stream.js';
import { Meter } from './pipeline/meter.js';

/**
 * For the day the control plane is gone: with the exported key-encryption
 * private key, a backup's meta.json and its object, write the native dump
 * (e.g. for pg_restore). Authenticates every segment and checks the SHA-256.
 */
export async function decryptBackup(o: {
  keyFile: string;
  metaFile: string;
  inFile: string;
  out: Writable | string;
  /** Open a backup written by an agent before 0.1.1, sealed under an all-zero key (a bug). */
  legacyZeroKey?: boolean;
}) {
  const keyDoc = JSON.parse(await readFile(o.keyFile, 'utf8')) as { privateJwk?: JWK } & JWK;
  const jwk = (keyDoc.privateJwk ?? keyDoc) as JWK;
  const meta = BackupMeta.parse(JSON.parse(await readFile(o.metaFile, 'utf8')));
  const dataKey = o.legacyZeroKey ? Buffer.alloc(32) : await unwrapDataKey(meta.wrappedKey, jwk);
  const sha = new Meter({ sha256: true });
  const decrypt = new DecryptStream(dataKey);
  dataKey.fill(0);
  const out = typeof o.out === 'string' ? createWriteStream(o.out, { mode: 0o600 }) : o.out;
  await pipeline(
    createReadStream(o.inFile, { highWaterMark: 1024 * 1024 }),
    sha,
    decrypt,
    decompressor(meta.compressAlgo),
    out,
  );
  const digest = sha.digest();
  if (digest !== meta.sha256)
    throw new Error(`SHA-256 of ${o.inFile} is ${digest}, meta.json says ${meta.sha256}`);
  return { bytesIn: sha.bytes, segments: decrypt.segments };
}
