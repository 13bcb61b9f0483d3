// The agent's per-byte work on its own, as one stage of a shell pipeline (bench:floor):
// stdin -> segmented AES-256-GCM + SHA-256 of the output (EncryptStream) -> the file in argv[2].
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { EncryptStream } from '../agent/src/pipeline/segmented-gcm.js';

const out = process.argv[2];
if (!out) throw new Error('usage: encrypt-stdin OUT');
const e = new EncryptStream(randomBytes(32));
await pipeline(process.stdin, e, createWriteStream(out));
process.stderr.write(`${e.bytesOut} ${e.digest()}\n`);
