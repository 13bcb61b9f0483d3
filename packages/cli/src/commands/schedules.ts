import { EXIT, usage } from '../api.js';
import type { Ctx } from '../context.js';
import { resolveTarget } from '../lookups.js';
import { show, table } from '../output.js';

/** A target's schedules, and a one-off cleanup by age. */

export async function schedule(c: Ctx): Promise<number> {
  const { api, out, flags, sub, rest, need } = c;
  const t = await resolveTarget(api, rest[0] ?? (flags.target as string | undefined));
  const base = `/api/v1/targets/${t.id}/schedules`;
  if (sub === 'ls') {
    const r = await api.get<{ items: Record<string, unknown>[] }>(base);
    show(out, r.items, () => table(out, r.items, ['id', 'cron', 'timezone', 'enabled', 'nextRunAt']));
    return EXIT.ok;
  }
  if (sub === 'create') {
    const s = await api.post<{ id: string }>(base, {
      cron: need(flags.cron, '--cron'),
      ...(flags.timezone ? { timezone: flags.timezone } : {}),
    });
    show(out, s, () => out.write(`${s.id}\n`));
    return EXIT.ok;
  }
  if (sub === 'enable' || sub === 'disable') {
    const id = need(rest[1], 'a schedule id');
    const s = await api.call('PATCH', `${base}/${id}`, { enabled: sub === 'enable' });
    show(out, s, () => out.write(`schedule ${id} ${sub}d\n`));
    return EXIT.ok;
  }
  throw usage(`schedule ${sub ?? ''}: expected ls, create, enable or disable`);
}

export async function cleanup(c: Ctx): Promise<number> {
  const { api, out, flags, sub, need } = c;
  const t = await resolveTarget(api, sub);
  const olderThan = need(flags['older-than'], '--older-than (like 30d)');
  if (Boolean(flags['dry-run']) === Boolean(flags.confirm))
    throw usage('cleanup needs exactly one of --dry-run or --confirm');
  const r = await api.post<Record<string, unknown>>(`/api/v1/targets/${t.id}/cleanup`, {
    olderThan,
    dryRun: Boolean(flags['dry-run']),
  });
  show(out, r, () => out.write(`${JSON.stringify(r, null, 2)}\n`));
  return EXIT.ok;
}
