/**
 * A backup's meta.json is signed by the agent that took it (Ed25519, its enrolled
 * signing key), so that whoever can write to the bucket cannot get a forged or
 * altered backup into the catalogue by a rescan. The signature covers every field
 * but itself and the key wrapping (`wrappedKey`, `kekId`), which a key rotation
 * rewrites; the data stays pinned by the signed `sha256` and `sizeBytes`, and the
 * wrapping by its own binding to the backup (key-binding.ts).
 */
export const META_UNSIGNED_FIELDS = ['signature', 'wrappedKey', 'kekId'] as const;

/** JSON with object keys sorted at every level: the same value always gives the same bytes (dates as ISO strings). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v instanceof Date ? v.toISOString() : v) ?? 'null';
}

/** The bytes an agent signs for a meta.json. */
export function metaSigningInput(meta: Record<string, unknown>): Buffer {
  const rest: Record<string, unknown> = { ...meta };
  for (const f of META_UNSIGNED_FIELDS) delete rest[f];
  return Buffer.from(`dbbackup meta v1\n${canonicalJson(rest)}`, 'utf8');
}
