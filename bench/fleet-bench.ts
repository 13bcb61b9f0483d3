/**
 * pnpm bench:fleet [agents] — a protocol-level fleet against one (or two) real control-plane processes.
 *
 * Real enrolments (an enrolment token and an Ed25519 key each), real connect tokens, real sockets on
 * 127.0.0.1, the agent's backoff and Retry-After reading and message formats from proto/, 15 s
 * heartbeats (FLEET_HEARTBEAT_MS). The simulator shares the machine's cores with the control plane
 * and its Postgres. It prints one table row:
 *
 *   connect all · steady heartbeat-ack p99 · dispatch p99 of 200 paced pings (request → agent
 *   received / → success acknowledged) · a burst of FLEET_BURST (1000) commands, first request → all
 *   succeeded · control-plane RSS · graceful restart (SIGTERM: shutdown time; new process up → all
 *   welcomed) · kill -9 restart (the same) · connection attempts per 100 ms and per agent, peak / mean
 *   · status-history rows the restarts wrote · welcomed connections dropped while steady.
 *
 * FLEET_REPLICAS=2 starts two processes on the one database; each agent picks one of the two URLs at
 * random on every attempt (DNS round robin), and the paced commands go through the replica that does
 * not hold the agent's socket (routed by Postgres NOTIFY).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import {
  attemptRate,
  type ControlPlane,
  cleanupAll,
  enrolFleet,
  Fleet,
  fleetApi,
  percentile,
  pool,
  query,
  startControlPlane,
  startPostgres,
} from '@dbbackup/testkit';

const N = Number(process.argv[2] ?? process.env.FLEET_AGENTS ?? 1000);
const HB = Number(process.env.FLEET_HEARTBEAT_MS ?? 15_000);
const BURST = Number(process.env.FLEET_BURST ?? 1000);
const REPLICAS = Number(process.env.FLEET_REPLICAS ?? 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ms = (x: number) => `${Math.round(x)} ms`;

function rssMb(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1]) / 1024);
}

/** CPU seconds used so far by a process (`pid`), or by every process named `comm`. */
function cpuSeconds(o: { pid?: number; comm?: string }): number {
  const pids = o.pid ? [o.pid] : readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  let ticks = 0;
  for (const pid of pids) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      if (o.comm && name !== o.comm) continue;
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
      // Children it reaped (a postmaster's exited backends) count too.
      if (o.comm) ticks += Number(f[13]) + Number(f[14]);
    } catch {}
  }
  return ticks / 100;
}

/** CPU seconds the control planes, Postgres and this simulator use while `fn` runs. */
async function cpuOf<T>(cps: ControlPlane[], fn: () => Promise<T>) {
  const read = () => ({
    cp: cps.reduce((a, cp) => a + cpuSeconds({ pid: cp.proc.child.pid as number }), 0),
    pg: cpuSeconds({ comm: 'postgres' }),
    sim: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
  });
  const a = read();
  const t = Date.now();
  const value = await fn();
  const b = read();
  const wall = (Date.now() - t) / 1000;
  const pct = (x: number) => `${Math.round((100 * x) / wall)}%`;
  return { value, cpu: `cp ${pct(b.cp - a.cp)}, pg ${pct(b.pg - a.pg)}, sim ${pct(b.sim - a.sim)}` };
}

/** Commands through `via` for agents chosen by `pick`; returns request → received and → succeeded. */
async function commands(
  fleet: Fleet,
  cps: ControlPlane[],
  count: number,
  paceMs: number,
  concurrency: number,
  dbUrl: string,
) {
  const sent: { id: string; at: number; answered: number }[] = [];
  const first = Date.now();
  await pool(Array.from({ length: count }), concurrency, async (_x, i) => {
    if (paceMs) await sleep(Math.max(0, first + i * paceMs - Date.now()));
    const agent = fleet.agents[Math.floor(Math.random() * fleet.agents.length)];
    // With replicas, through one that does not hold the agent's socket (routed by Postgres).
    const cp = (cps.find((c) => c.url !== agent?.url) ?? cps[0]) as ControlPlane;
    const at = Date.now();
    const r = await fleetApi<{ id: string }>(
      cp.url,
      cp.adminToken,
      'POST',
      `/api/v1/agents/${agent?.id.agentId}/commands`,
      {
        command: { kind: 'ping', echo: String(i) },
      },
    );
    sent.push({ id: r.id, at, answered: Date.now() - at });
  });
  await fleet.rec.until(
    () => sent.every((x) => fleet.rec.succeeded.has(x.id)),
    120_000,
    `${count} commands succeeded`,
  );
  const received = sent.map((x) => (fleet.rec.received.get(x.id) as number) - x.at);
  const succeeded = sent.map((x) => (fleet.rec.succeeded.get(x.id) as number) - x.at);
  const last = Math.max(...sent.map((x) => fleet.rec.succeeded.get(x.id) as number));
  // The control plane's own part: the command row's creation to its push on the socket.
  const inCp = await query<{ ms: number }>(
    dbUrl,
    'SELECT extract(epoch FROM delivered_at - created_at) * 1000 AS ms FROM commands WHERE id = ANY($1::uuid[])',
    [sent.map((x) => x.id)],
  );
  return {
    delivered: percentile(
      inCp.map((r) => Number(r.ms)),
      99,
    ),
    answered: percentile(
      sent.map((x) => x.answered),
      99,
    ),
    received: percentile(received, 99),
    succeeded: percentile(succeeded, 99),
    totalMs: last - first,
  };
}

/**
 * Plant `perAgent` PostgreSQL targets per agent, each with an hourly schedule (straight into the
 * database: the target API would ask each agent to test the connection), to show what the
 * periodic sweeps cost with a large catalogue.
 */
async function plantTargets(dbUrl: string, perAgent: number) {
  await query(
    dbUrl,
    `INSERT INTO storage_profiles (id, name, kind, config) VALUES (gen_random_uuid(), 'bench', 'local', '{"path":"/tmp/x"}')`,
  );
  await query(
    dbUrl,
    `INSERT INTO targets (id, agent_id, engine, name, connection, secret_ref, options, storage_id)
     SELECT gen_random_uuid(), a.id, 'postgresql', 'db' || g, '{"host":"127.0.0.1","port":5432,"database":"x","user":"x"}',
            '{}', '{}', (SELECT id FROM storage_profiles WHERE name = 'bench')
       FROM agents a CROSS JOIN generate_series(1, $1) g`,
    [perAgent],
  );
  await query(
    dbUrl,
    `INSERT INTO schedules (id, target_id, cron, timezone) SELECT gen_random_uuid(), id, '0 * * * *', 'UTC' FROM targets`,
  );
  const [n] = await query<{ n: number }>(dbUrl, 'SELECT count(*)::int AS n FROM targets');
  return n?.n ?? 0;
}

async function historyRows(dbUrl: string, since: Date) {
  const rows = await query<{ status: string; reason: string; n: number }>(
    dbUrl,
    'SELECT status, reason, count(*)::int AS n FROM agent_status_history WHERE at >= $1 GROUP BY 1, 2 ORDER BY 3 DESC',
    [since],
  );
  return rows.map((r) => `${r.n} ${r.status} (${r.reason})`).join(', ') || 'none';
}

/** Stop every process with `signal`, start them again, and time the fleet's return. */
async function restart(fleet: Fleet, cps: ControlPlane[], dbUrl: string, signal: NodeJS.Signals) {
  const since = new Date();
  const stopAt = Date.now();
  const exits = await Promise.all(cps.map((cp) => cp.stop(signal).then(() => cp.proc.exited)));
  const shutdownMs = Date.now() - stopAt;
  const steps = cps.map(
    (cp) => /"steps":(\{[^}]*\})/.exec(cp.proc.lines.find((l) => /control plane stopped/.test(l)) ?? '')?.[1],
  );
  await sleep(1000);
  await Promise.all(cps.map((cp) => cp.restart()));
  const up = Date.now();
  await fleet.untilReady(N, 600_000);
  const back = Date.now() - up;
  const rate = attemptRate(fleet.rec.attempts, up, up + back);
  // Stay a while: flapping shows as drops and history rows after everyone is back.
  const drops = fleet.rec.drops;
  await sleep(2 * HB);
  return {
    shutdownMs,
    steps: steps.join(' '),
    exit: exits.map((e) => e.code ?? e.signal).join('/'),
    back,
    rate,
    perAgent: rate.total / N,
    dropsAfter: fleet.rec.drops - drops,
    history: await historyRows(dbUrl, since),
  };
}

async function main() {
  const pg = await startPostgres();
  const dbUrl = await pg.createDatabase('fleet');
  // Replicas of one database share its master key; the first writes the admin token.
  const env = {
    DBBACKUP_LOG_LEVEL: 'info',
    DBBACKUP_RECONNECT_GRACE_MS: '90000',
    DBBACKUP_MASTER_KEY: randomBytes(32).toString('base64'),
  };
  const cps: ControlPlane[] = [];
  for (let i = 0; i < REPLICAS; i++)
    cps.push(
      await startControlPlane({
        databaseUrl: dbUrl,
        heartbeatIntervalMs: HB,
        env,
        ...(cps[0] ? { adminToken: cps[0].adminToken } : {}),
      }),
    );
  const main = cps[0] as ControlPlane;
  let t = Date.now();
  const ids = await enrolFleet(main.url, main.adminToken, N, 16);
  console.error(`enrolled ${N} agents in ${s(Date.now() - t)}`);
  const fleet = new Fleet(ids, () => cps.map((cp) => cp.url));
  t = Date.now();
  fleet.start();
  const { cpu: connectCpu } = await cpuOf(cps, () => fleet.untilReady(N, 600_000));
  const connectAll = Date.now() - t;
  console.error(`all ${N} welcomed in ${s(connectAll)} (CPU: ${connectCpu})`);
  await sleep(HB);
  const dropsBefore = fleet.rec.drops;
  fleet.rec.measuring = true;
  const { cpu: steadyCpu } = await cpuOf(cps, () => sleep(2 * HB));
  fleet.rec.measuring = false;
  const hbP99 = percentile(fleet.rec.heartbeatAcks, 99);
  const steadyDrops = fleet.rec.drops - dropsBefore;
  const rss = cps.map((cp) => rssMb(cp.proc.child.pid));
  console.error(
    `steady: heartbeat-ack p99 ${ms(hbP99)} over ${fleet.rec.heartbeatAcks.length} acks; RSS ${rss.join('/')} MB`,
  );
  // The same idle minute with a large catalogue: what the sweeps (missed backups, stalled jobs) add.
  const targets = await plantTargets(dbUrl, Number(process.env.FLEET_TARGETS_PER_AGENT ?? 5));
  await sleep(HB);
  const { cpu: catalogueCpu } = await cpuOf(cps, () => sleep(2 * HB));
  console.error(`idle with ${targets} targets and schedules: CPU ${catalogueCpu}`);
  const paced = await commands(fleet, cps, 200, 50, 200, dbUrl);
  console.error(
    `paced: POST answered p99 ${ms(paced.answered)}, created → pushed p99 ${ms(paced.delivered)} (in the control plane), received p99 ${ms(paced.received)}, succeeded p99 ${ms(paced.succeeded)}`,
  );
  const { value: burst, cpu: burstCpu } = await cpuOf(cps, () => commands(fleet, cps, BURST, 0, 50, dbUrl));
  console.error(`burst of ${BURST}: ${s(burst.totalMs)} (CPU: ${burstCpu})`);
  const graceful = await restart(fleet, cps, dbUrl, 'SIGTERM');
  console.error(`graceful restart: ${JSON.stringify(graceful)}`);
  const killed = await restart(fleet, cps, dbUrl, 'SIGKILL');
  console.error(`kill -9 restart: ${JSON.stringify(killed)}`);
  fleet.stop();
  if (process.env.FLEET_LOG_HISTOGRAM) {
    const counts = new Map<string, number>();
    for (const l of cps.flatMap((cp) => cp.proc.lines)) {
      const msg = /"msg":"([^"]*)"/.exec(l)?.[1] ?? l.slice(0, 60);
      counts.set(msg, (counts.get(msg) ?? 0) + 1);
    }
    console.error([...counts].sort((a, b) => b[1] - a[1]).slice(0, 15));
  }

  const rate = (r: typeof graceful) =>
    `${r.rate.peak} / ${r.rate.mean.toFixed(1)} per 100 ms; ${r.perAgent.toFixed(2)} per agent`;
  console.log(
    '\n| agents | replicas | connect all | heartbeat-ack p99 | dispatch p99 (pushed / received / succeeded) | burst | RSS | graceful: shutdown, all back | kill -9: all back | attempts (graceful) | drops while steady |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  console.log(
    `| ${N} | ${REPLICAS} | ${s(connectAll)} | ${ms(hbP99)} | ${ms(paced.delivered)} / ${ms(paced.received)} / ${ms(paced.succeeded)} | ${BURST} in ${s(burst.totalMs)} | ${rss.join(' + ')} MB | ${s(graceful.shutdownMs)} (exit ${graceful.exit}), ${s(graceful.back)} | ${s(killed.back)} | ${rate(graceful)} | ${steadyDrops} |`,
  );
  console.log(
    `\nidle CPU over ${s(2 * HB)}: ${steadyCpu}; with ${targets} targets and schedules: ${catalogueCpu}`,
  );
  console.log(
    `\ngraceful restart wrote: ${graceful.history}; drops after all were back: ${graceful.dropsAfter}`,
  );
  console.log(
    `kill -9 restart wrote: ${killed.history}; drops after: ${killed.dropsAfter}; attempts ${rate(killed)}`,
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
