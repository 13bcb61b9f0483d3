/**
 * A data key is bound to its backup. The agent that seals a backup wraps its
 * data key as a compact JWE whose protected header names the backup, the agent
 * and the target (`bid`, `aid`, `tid`); the header is the JWE's additional
 * authenticated data, so it cannot be changed without the unwrap failing. The
 * control plane reads the binding when a backup is reported (to refuse a key
 * that belongs to another backup) and checks it again, authenticated, before it
 * re-wraps the key for a restore or a rotation.
 *
 * A key re-wrapped for one restore or verify names the backup (`bid`), the
 * agent it is for (`aid`), its purpose and an expiry (`exp`, seconds since the
 * epoch); the agent checks all of them before it uses the key.
 */
export interface KeyBinding {
  /** The backup id. */
  bid: string;
  /** The agent that took the backup (or, for a re-wrapped key, the agent it is for). */
  aid: string;
  /** The target the backup is of. */
  tid: string;
}

export interface ForAgentBinding {
  bid: string;
  aid: string;
  use: 'restore';
  /** Seconds since the epoch. */
  exp: number;
}

/** The protected header of a compact JWE, without decrypting it (not yet authenticated). */
export function jweProtectedHeader(jwe: string): Record<string, unknown> | undefined {
  const first = jwe.split('.', 1)[0] ?? '';
  if (!first || first.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(first)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(first, 'base64url').toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The backup binding a header carries, if it carries a complete one. */
export function keyBindingOf(header: Record<string, unknown> | undefined): KeyBinding | undefined {
  if (!header) return undefined;
  const { bid, aid, tid } = header;
  if (typeof bid !== 'string' || typeof aid !== 'string' || typeof tid !== 'string') return undefined;
  return { bid, aid, tid };
}

/** Why a header's binding is not the expected one (undefined when it is). */
export function keyBindingProblem(
  header: Record<string, unknown> | undefined,
  expected: KeyBinding,
): string | undefined {
  const b = keyBindingOf(header);
  if (!b) return 'the data key is not bound to a backup (no bid/aid/tid in its JWE header)';
  if (b.bid !== expected.bid) return `the data key belongs to backup ${b.bid}, not ${expected.bid}`;
  if (b.aid !== expected.aid) return `the data key belongs to agent ${b.aid}, not ${expected.aid}`;
  if (b.tid !== expected.tid) return `the data key belongs to target ${b.tid}, not ${expected.tid}`;
  return undefined;
}

/** Why a key re-wrapped for this agent must not be used for this command (undefined when it may). */
export function forAgentBindingProblem(
  header: Record<string, unknown> | undefined,
  expected: { bid: string; aid: string },
  nowSeconds: number,
): string | undefined {
  if (!header) return 'the re-wrapped data key has no readable header';
  if (header.use !== 'restore') return 'the re-wrapped data key is not for a restore or verify';
  if (header.bid !== expected.bid)
    return `the re-wrapped data key is for backup ${String(header.bid)}, not ${expected.bid}`;
  if (header.aid !== expected.aid)
    return `the re-wrapped data key is for agent ${String(header.aid)}, not this one`;
  if (typeof header.exp !== 'number' || header.exp < nowSeconds)
    return 'the re-wrapped data key has expired; ask for the restore again';
  return undefined;
}
