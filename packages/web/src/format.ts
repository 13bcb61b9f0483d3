/** Sizes and times as people read them. */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '';
  if (n >= 1e12) return `${(n / 1e12).toFixed(1)} TB`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} B`;
}

/** "2 h ago", "in 5 min". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((Date.parse(iso) - now) / 1000);
  const a = Math.abs(s);
  if (a < 5) return 'just now';
  const v =
    a < 60
      ? `${a} s`
      : a < 3600
        ? `${Math.round(a / 60)} min`
        : a < 86_400 * 2
          ? `${Math.round(a / 3600)} h`
          : `${Math.round(a / 86_400)} days`;
  return s < 0 ? `${v} ago` : `in ${v}`;
}

export const STRIP_WORDS: Record<string, string> = {
  g: 'backed up',
  f: 'failed',
  m: 'missed',
  r: 'running',
  '-': 'no backup',
};

/** The size against the backup before: "▲ 12%" / "▼ 3%" / "" (no earlier backup, or within 1%). */
export function trend(now: number | null, before: number | null): string {
  if (now === null || before === null || before === 0) return '';
  const pct = Math.round(((now - before) / before) * 100);
  if (Math.abs(pct) < 1) return '';
  return pct > 0 ? `▲ ${pct}%` : `▼ ${-pct}%`;
}
