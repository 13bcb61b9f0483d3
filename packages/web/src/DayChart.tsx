import { bytes } from './format.js';

type Day = { day: string; succeeded: number; failed: number; bytes: number };

/** Backups per day for 30 days: succeeded and failed stacked, with the bytes stored each day. */
export function DayChart({ days }: { days: Day[] }) {
  const max = Math.max(1, ...days.map((d) => d.succeeded + d.failed));
  const w = 720;
  const h = 140;
  const bw = w / Math.max(1, days.length);
  const total = days.reduce((a, d) => a + d.succeeded, 0);
  const failed = days.reduce((a, d) => a + d.failed, 0);
  const stored = days.reduce((a, d) => a + d.bytes, 0);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${w} ${h + 18}`} role="img" aria-labelledby="chart-title">
        <title id="chart-title">
          Backups per day over 30 days: {total} succeeded, {failed} failed, {bytes(stored)} written
        </title>
        {days.map((d, i) => {
          const ok = (d.succeeded / max) * h;
          const bad = (d.failed / max) * h;
          return (
            <g key={d.day}>
              <title>{`${d.day}: ${d.succeeded} succeeded, ${d.failed} failed, ${bytes(d.bytes)}`}</title>
              <rect className="bar-ok" x={i * bw + 1} y={h - ok} width={bw - 2} height={ok} />
              <rect className="bar-bad" x={i * bw + 1} y={h - ok - bad} width={bw - 2} height={bad} />
            </g>
          );
        })}
        <text x="0" y={h + 14} className="axis">
          {days[0]?.day}
        </text>
        <text x={w} y={h + 14} className="axis" textAnchor="end">
          {days[days.length - 1]?.day}
        </text>
      </svg>
      <figcaption>
        {total} backups succeeded and {failed} failed in 30 days; {bytes(stored)} written.
      </figcaption>
    </figure>
  );
}
