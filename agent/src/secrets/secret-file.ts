import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { type SecretEntry, SecretEntry as SecretEntrySchema, SecretsFile } from './host-secrets.js';

const DEST = /^(\/[^\0]{1,1023}|[A-Za-z0-9_.:[\]-]{1,253}:\d{1,5})$/;

/**
 * Declare (or replace) one secret in the host's secrets file, written owner-only and
 * atomically. The password comes from stdin unless --from-env or --from-file names
 * where the agent reads it at each use; it is never written to the state directory.
 */
export async function addSecret(o: {
  file: string;
  stateDir: string;
  name: string;
  allow: string[];
  fromEnv?: string | undefined;
  fromFile?: string | undefined;
  stdin: Readable;
}): Promise<{ name: string; allow: string[]; replaced: boolean }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(o.name))
    throw new Error('a secret name is letters, digits, _ . - (at most 63)');
  if (!o.allow.length)
    throw new Error('--allow names where the secret may be sent: a unix socket path or host:port');
  const bad = o.allow.find((d) => !DEST.test(d));
  if (bad) throw new Error(`--allow ${bad}: a unix socket path or host:port`);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  const state = real(o.stateDir);
  const inside = (p: string) => real(p) === state || real(p).startsWith(`${state}${path.sep}`);
  if (inside(path.dirname(o.file)) || inside(o.file))
    throw new Error(`${o.file} is inside the agent's state directory; keep secrets elsewhere`);
  let entry: SecretEntry;
  if (o.fromEnv) entry = { env: o.fromEnv, allow: o.allow };
  else if (o.fromFile) {
    if (inside(o.fromFile)) throw new Error(`${o.fromFile} is inside the agent's state directory`);
    entry = { passwordFile: o.fromFile, allow: o.allow };
  } else {
    const password = (await text(o.stdin)).split('\n')[0]?.trim() ?? '';
    if (!password) throw new Error('no password on stdin (or use --from-env / --from-file)');
    entry = { password, allow: o.allow };
  }
  entry = SecretEntrySchema.parse(entry);
  const current = existsSync(o.file) ? SecretsFile.parse(JSON.parse(await readFile(o.file, 'utf8'))) : {};
  const replaced = o.name in current;
  current[o.name] = entry;
  await mkdir(path.dirname(o.file), { recursive: true, mode: 0o700 });
  const tmp = `${o.file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(current, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, o.file);
  return { name: o.name, allow: o.allow, replaced };
}
