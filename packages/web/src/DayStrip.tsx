import { STRIP_WORDS } from './format.js';

/** A target's last 30 days, one cell per UTC day (today last): the RPO check at a glance. */
export function DayStrip({ strip, name }: { strip: string; name: string }) {
  const today = new Date();
  const cells = [...strip].map((c, i) => {
    const d = new Date(today.getTime() - (strip.length - 1 - i) * 86_400_000);
    return { c, day: d.toISOString().slice(0, 10) };
  });
  const good = cells.filter((x) => x.c === 'g').length;
  return (
    <span className="strip" role="img" aria-label={`${name}: ${good} of ${cells.length} days backed up`}>
      {cells.map((x) => (
        <span
          key={x.day}
          className={`cell cell-${x.c === '-' ? 'none' : x.c}`}
          title={`${x.day}: ${STRIP_WORDS[x.c] ?? x.c}`}
        />
      ))}
    </span>
  );
}
