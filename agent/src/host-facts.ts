import { readdir, realpath, statfs } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { DiscoveredDb, DumpTool, HostFacts, ReachableServer } from '@dbbackup/proto';
import { runTool } from './run-tool.js';

const TOOL_NAMES = [
  'pg_dump',
  'pg_restore',
  'psql',
  'mysqldump',
  'mariadb-dump',
  'mysql',
  'mariadb',
  'redis-cli',
  'mongodump',
  'mongorestore',
  'sqlite3',
  'zstd',
];

async function candidates(name: string): Promise<string[]> {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  if (name.startsWith('pg_') || name === 'psql') {
    // Debian keeps one client per major version here; list the newest first.
    const majors = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
    majors.sort((a, b) => Number(b) - Number(a));
    dirs.unshift(...majors.map((m) => `/usr/lib/postgresql/${m}/bin`));
  }
  return [...new Set(dirs.map((d) => path.join(d, name)))];
}

async function versionOf(file: string): Promise<string | null | undefined> {
  const r = await runTool(file, ['--version']);
  if (r.notFound) return undefined; // not found / not executable
  const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /\d+\.\d+/.test(l));
  return line?.trim().slice(0, 200) ?? null;
}

/** Database dump and restore tools on this host, with the version each prints. Arguments are arrays; nothing goes through a shell. */
export async function discoverTools(): Promise<DumpTool[]> {
  const perTool = await Promise.all(
    TOOL_NAMES.map(async (name) => {
      const seen = new Set<string>();
      const files: string[] = [];
      for (const file of await candidates(name)) {
        const real = await realpath(file).catch(() => undefined);
        if (!real || seen.has(real)) continue;
        seen.add(real);
        files.push(file);
      }
      const versions = await Promise.all(files.map(versionOf));
      return files.flatMap((file, i) =>
        versions[i] === undefined ? [] : [{ name, path: file, version: versions[i] ?? null }],
      );
    }),
  );
  return perTool.flat();
}

function canConnect(opts: net.NetConnectOpts, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Database servers reachable from this host on their usual local ports and sockets. Only local connections. */
export async function probeLocalServers(): Promise<ReachableServer[]> {
  const tcp: [ReachableServer['engine'], number][] = [
    ['postgresql', 5432],
    ['mysql', 3306],
    ['redis', 6379],
    ['mongodb', 27017],
  ];
  const sockets: [ReachableServer['engine'], string][] = [
    ['mysql', '/run/mysqld/mysqld.sock'],
    ['redis', '/run/redis/redis-server.sock'],
    ['mongodb', '/tmp/mongodb-27017.sock'],
  ];
  for (const dir of ['/run/postgresql', '/var/run/postgresql', '/tmp']) {
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (/^\.s\.PGSQL\.\d+$/.test(f)) sockets.push(['postgresql', path.join(dir, f)]);
    }
  }
  const checks = [
    ...tcp.map(async ([engine, port]) =>
      (await canConnect({ host: '127.0.0.1', port }))
        ? { engine, address: `127.0.0.1:${port}`, via: 'tcp' as const }
        : undefined,
    ),
    ...[...new Map(sockets.map((s) => [s[1], s])).values()].map(async ([engine, p]) =>
      (await canConnect({ path: p })) ? { engine, address: p, via: 'unix' as const } : undefined,
    ),
  ];
  return (await Promise.all(checks)).filter((x): x is ReachableServer => x !== undefined);
}

export interface FactsInput {
  agentVersion: string;
  stateDir: string;
  tools: DumpTool[];
  queueDepth: number;
  outboxDepth: number;
  discovered?: DiscoveredDb[] | undefined;
}

export async function hostFacts(i: FactsInput): Promise<HostFacts> {
  let free: number | null = null;
  try {
    const s = await statfs(i.stateDir);
    free = s.bavail * s.bsize;
  } catch {
    free = null;
  }
  return {
    hostname: os.hostname(),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    agentVersion: i.agentVersion,
    uptimeSeconds: Math.round(process.uptime()),
    hostUptimeSeconds: Math.round(os.uptime()),
    load: os.loadavg(),
    stateDirFreeBytes: free,
    tools: i.tools,
    queueDepth: i.queueDepth,
    outboxDepth: i.outboxDepth,
    ...(i.discovered ? { discovered: i.discovered } : {}),
  };
}
