/** How the CLI prints: a table or JSON (--json), sizes in binary units, progress on stderr. */
export type Flags = Record<string, string | boolean | string[] | undefined>;
export type Out = { json: boolean; write(s: string): void; err(s: string): void; tty: boolean };

export function table(out: Out, rows: Record<string, unknown>[], cols: string[]) {
  if (rows.length === 0) {
    out.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    `${vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd()}\n`;
  out.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) out.write(line(cols.map((c) => cell(r[c]))));
}

export function show(out: Out, value: unknown, human: () => void) {
  if (out.json) out.write(`${JSON.stringify(value, null, 2)}\n`);
  else human();
}

export const bytes = (n: number | null | undefined) => {
  if (n === null || n === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
};
