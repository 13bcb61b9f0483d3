/** What the API may show of events and commands: never a wrapped or re-wrapped data key. */

/** An event body as the API may show it: no wrapped keys. */
export function redactEventBody(body: unknown): unknown {
  return redactKeys(body);
}

const KEY_FIELDS = new Set(['wrappedKey', 'wrappedKeyForAgent']);

/** A copy of a JSON value with every wrapped or re-wrapped key replaced by "[redacted]". */
export function redactKeys(v: unknown, depth = 0): unknown {
  if (depth > 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => redactKeys(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>))
    out[k] = KEY_FIELDS.has(k) && typeof x === 'string' ? '[redacted]' : redactKeys(x, depth + 1);
  return out;
}
