import { createWriteStream } from 'node:fs';
import { ApiError, EXIT, usage } from '../api.js';
import type { Ctx } from '../context.js';
import { show, table } from '../output.js';

/** Alerts, the audit export and key rotation. */

export async function alerts(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  if (sub && sub !== 'ls') throw usage('alerts: expected ls');
  const r = await api.get<{ items: Record<string, unknown>[] }>(
    `/api/v1/alerts${flags.state ? `?state=${encodeURIComponent(flags.state as string)}` : ''}`,
  );
  show(out, r.items, () => table(out, r.items, ['kind', 'state', 'firedAt', 'message']));
  return EXIT.ok;
}

export async function audit(c: Ctx): Promise<number> {
  const { api, out, flags, sub } = c;
  if (sub !== 'export') throw usage('audit: expected export');
  const format = (flags.format as string | undefined) ?? 'jsonl';
  const res = await api.raw('GET', `/api/v1/audit/export?format=${encodeURIComponent(format)}`);
  if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => ({}))) as never);
  const sink = flags.out ? createWriteStream(flags.out as string, { mode: 0o600 }) : undefined;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (sink) sink.write(chunk);
    else out.write(Buffer.from(chunk).toString('utf8'));
  }
  if (sink) await new Promise((r) => sink.end(r));
  return EXIT.ok;
}

export async function rotateKeys(c: Ctx): Promise<number> {
  const { api, out, flags } = c;
  const job = await api.post<{ id: string; state: string }>('/api/v1/keys/kek/rotate');
  if (!flags.wait) {
    show(out, job, () =>
      out.write(`key rotation ${job.id} started; follow with dbbackup rotate-keys --wait\n`),
    );
    return EXIT.ok;
  }
  for (;;) {
    const s = await api.get<{ id: string; state: string; done: number; total: number; error?: string }>(
      `/api/v1/keys/rotations/${job.id}`,
    );
    if (!out.json)
      out.err(`${out.tty ? '\r\x1b[2K' : ''}re-wrapped ${s.done}/${s.total}${out.tty ? '' : '\n'}`);
    if (s.state !== 'running') {
      if (out.tty && !out.json) out.err('\n');
      show(out, s, () => out.write(`key rotation ${s.state}: ${s.done}/${s.total} backups re-wrapped\n`));
      return s.state === 'succeeded' ? EXIT.ok : EXIT.failure;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Any API call with the saved session: `api METHOD PATH [--data JSON]` (the path below
 * /api/v1). What the dashboard shows for an action no other command covers.
 */
export async function rawApi(c: Ctx): Promise<number> {
  const { api, out, flags, sub, rest } = c;
  const method = (sub ?? '').toUpperCase();
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method))
    throw usage('api: expected GET, POST, PUT, PATCH or DELETE, then a path');
  const p = rest[0];
  if (!p?.startsWith('/') || p.startsWith('//') || p.includes('..'))
    throw usage('api: the path starts with / and is below /api/v1, like /targets');
  let body: unknown;
  if (flags.data !== undefined) {
    try {
      body = JSON.parse(flags.data as string);
    } catch {
      throw usage('api: --data is not JSON');
    }
  }
  const r = await api.call<unknown>(method, `/api/v1${p}`, body);
  if (r !== undefined) out.write(`${JSON.stringify(r, null, 2)}\n`);
  return EXIT.ok;
}
