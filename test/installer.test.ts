import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ControlPlane,
  cleanupAll,
  createEnrollmentToken,
  onCleanup,
  REPO_ROOT,
  trackDir,
  waitFor,
} from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from './backup-support.js';
import { type AgentView, controlPlane, getAgent } from './support.js';

/**
 * install.sh as a DBA runs it: fetched from a running control plane and piped to
 * sh, with the npm registry unreachable. `--no-systemd` (the agent runs as this
 * user in the background) because the test machine has no systemd to install a
 * unit into; the unit itself is checked with systemd-analyze.
 */
const VERSION = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
// The release after this one (patch + 1), for the upgrade test.
const NEWER = VERSION.replace(/\d+$/, (p) => String(Number(p) + 1));

let cp: ControlPlane;
let bundles: string;
let work: string;
let script: string;
let token: string;
const dirs = { prefix: '', state: '', config: '' };

function pack(out: string, version?: string) {
  const args = ['pack.mjs', '--out', out, ...(version ? ['--version', version] : [])];
  execFileSync('node', args, { cwd: path.join(REPO_ROOT, 'agent') });
}

function bundleFile(version: string) {
  const f = readdirSync(bundles).find((n) => n.startsWith(`dbbackup-agent-${version}-`) && n.endsWith('.gz'));
  if (!f) throw new Error(`no bundle ${version} in ${bundles}`);
  return path.join(bundles, f);
}

type Run = { code: number | null; out: string; err: string; ms: number };

/** `cat install.sh | sh -s -- args`, with no npm registry and none of this process's DBBACKUP_* settings. */
function install(args: string[], o: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('DBBACKUP_') && !/proxy/i.test(k)) env[k] = v;
  }
  Object.assign(env, {
    npm_config_registry: 'http://127.0.0.1:9',
    NPM_CONFIG_REGISTRY: 'http://127.0.0.1:9',
  });
  Object.assign(env, o.env);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-s', '--', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    // The agent started in the background inherits no pipe of ours (it writes to its log),
    // so 'close' comes when the installer itself is done.
    child.on('close', (code) => resolve({ code, out, err, ms: Date.now() - t0 }));
    child.stdin.end(o.input ?? script);
  });
}

const dirArgs = () => [
  '--no-systemd',
  '--prefix',
  dirs.prefix,
  '--state-dir',
  dirs.state,
  '--config-dir',
  dirs.config,
];

/** path → sha256 and mtime of every file under the given roots. */
function snapshot(...roots: string[]) {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      for (const n of readdirSync(p)) walk(path.join(p, n));
      return;
    }
    const hash = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'link';
    out[p] = `${hash} ${st.mtimeMs} ${st.mode.toString(8)}`;
  };
  for (const r of roots) walk(r);
  return out;
}

const agentPid = () => Number(readFileSync(path.join(dirs.state, 'agent.pid'), 'utf8'));
const alive = (pid: number) => existsSync(`/proc/${pid}`);
const agentId = () => JSON.parse(readFileSync(path.join(dirs.state, 'agent.json'), 'utf8')).agentId as string;

beforeAll(async () => {
  work = trackDir(mkdtempSync(path.join(tmpdir(), 'dbb-install-')));
  bundles = path.join(work, 'bundles');
  pack(bundles);
  cp = await controlPlane({ env: { DBBACKUP_AGENT_BUNDLE_DIR: bundles } });
  const r = await fetch(`${cp.url}/install.sh`);
  expect(r.status).toBe(200);
  script = await r.text();
  // Only the installer writes under host/: what it leaves there after --uninstall is exactly what it kept.
  const host = path.join(work, 'host');
  mkdirSync(host);
  dirs.prefix = path.join(host, 'opt', 'dbbackup-agent');
  dirs.state = path.join(host, 'state');
  dirs.config = path.join(host, 'etc', 'dbbackup');
  onCleanup(() => {
    const pidFile = path.join(dirs.state, 'agent.pid');
    if (existsSync(pidFile)) {
      try {
        process.kill(agentPid(), 'SIGKILL');
      } catch {}
    }
  });
});
afterAll(cleanupAll);

describe('what the control plane serves', () => {
  it('fills its own URL into install.sh and the ready-to-paste line of a new enrolment token', async () => {
    expect(script).toContain(`default_server='${cp.url}'`);
    expect(script.startsWith('#!/bin/sh')).toBe(true);
    const r = await cp.api<{ token: string; installCommand: string }>(
      'POST',
      '/api/v1/enrollment-tokens',
      {},
    );
    expect(r.status).toBe(201);
    expect(r.body.installCommand).toBe(
      `curl -fsSL ${cp.url}/install.sh | sudo sh -s -- --token ${r.body.token}`,
    );
  });

  it('serves the newest bundle with its published checksum, and refuses bad input with problem+json', async () => {
    const platform = `linux-x64-node${process.versions.modules}`;
    const rel = await fetch(`${cp.url}/agent/release?platform=${platform}`);
    expect(rel.status).toBe(200);
    const fields = Object.fromEntries(
      (await rel.text())
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
    expect(fields.version).toBe(VERSION);
    const body = Buffer.from(await (await fetch(`${cp.url}${fields.url}`)).arrayBuffer());
    expect(createHash('sha256').update(body).digest('hex')).toBe(fields.sha256);
    expect(body.length).toBe(Number(fields.size));

    for (const [p, status, detail] of [
      ['/agent/release', 400, /platform/],
      ['/agent/release?platform=..%2F..%2Fetc', 400, /platform/],
      ['/agent/release?platform=linux-riscv64-node115', 404, new RegExp(platform)],
      [`/agent/release?platform=${platform}&version=9.9.9`, 404, /9\.9\.9/],
      [`/agent/release?platform=${platform}&version=latest;rm`, 400, /version/],
      ['/agent/files/..%2F..%2Fpackage.json', 404, /no such agent bundle/],
      ['/agent/files/dbbackup-agent-0.0.1-linux-x64-node115.tar.gz', 404, /no such agent bundle/],
    ] as const) {
      const res = await fetch(`${cp.url}${p}`);
      expect(res.status, p).toBe(status);
      expect(res.headers.get('content-type'), p).toMatch(/application\/problem\+json/);
      expect(((await res.json()) as { detail: string }).detail, p).toMatch(detail);
    }
  });

  it('refuses to write a Host header that is not a plain host:port into the script', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: cp.port, path: '/install.sh', headers: { host: 'x$(reboot)' } },
        (r) => {
          let body = '';
          r.on('data', (c) => {
            body += c;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/DBBACKUP_PUBLIC_URL/);
    expect(res.body).not.toContain('#!/bin/sh');
  });
});

describe('install.sh', () => {
  it('says plainly why it cannot install on an unsupported host, and installs nothing', async () => {
    const fakes = path.join(work, 'fakes');
    const fake = (dir: string, name: string, body: string) => {
      mkdirSync(path.join(fakes, dir), { recursive: true });
      writeFileSync(path.join(fakes, dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return path.join(fakes, dir);
    };
    const withPath = (dir: string) => ({ PATH: `${dir}:${process.env.PATH}` });
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        'macOS',
        withPath(fake('darwin', 'uname', '[ "$1" = -s ] && echo Darwin || echo arm64')),
        /unsupported operating system 'Darwin'/,
      ],
      [
        'riscv64',
        withPath(fake('riscv', 'uname', '[ "$1" = -s ] && echo Linux || echo riscv64')),
        /unsupported architecture 'riscv64'/,
      ],
      [
        'no Node.js',
        { DBBACKUP_NODE: path.join(fakes, 'nowhere', 'node') },
        /Node\.js 20 or newer is needed/,
      ],
      [
        'Node.js 18',
        { DBBACKUP_NODE: path.join(fake('node18', 'node', 'echo 18.19.1'), 'node') },
        /Node\.js 18\.19\.1 .* is too old/,
      ],
      [
        'a Node.js without a bundle',
        {
          DBBACKUP_NODE: path.join(
            fake('node99', 'node', 'case "$2" in *modules*) echo 999;; *) echo 99.0.0;; esac'),
            'node',
          ),
        },
        /no agent for this host \(linux-x64-node999\)[\s\S]*it has: linux-x64-node\d+/,
      ],
      ['no server', { DBBACKUP_SERVER: '' }, /no control plane URL/],
    ];
    for (const [what, env, message] of cases) {
      const input =
        what === 'no server'
          ? script.replace(/default_server='[^']*'/, "default_server='@@DBBACKUP_SERVER@@'")
          : script;
      const r = await install([...dirArgs(), '--token', 'enr_unused'], { env, input });
      expect(r.code, what).toBe(1);
      expect(r.err, what).toMatch(message);
      for (const d of Object.values(dirs)) expect(existsSync(d), `${what}: ${d}`).toBe(false);
    }
  });

  it('refuses a Node.js under a home directory for the hardened service', async () => {
    const home = trackDir(mkdtempSync('/home/dbb-node-'));
    writeFileSync(
      path.join(home, 'node'),
      '#!/bin/sh\ncase "$2" in *modules*) echo 115;; *) echo 20.19.0;; esac\n',
      {
        mode: 0o755,
      },
    );
    const r = await install(
      ['--prefix', dirs.prefix, '--state-dir', dirs.state, '--config-dir', dirs.config, '--token', 'enr_x'],
      {
        env: { DBBACKUP_NODE: path.join(home, 'node') },
      },
    );
    expect(r.code).toBe(1);
    // Checked in order: root, then systemctl, then where Node.js lives.
    const hasSystemctl = spawnSync('sh', ['-c', 'command -v systemctl']).status === 0;
    if (process.getuid?.() !== 0) expect(r.err).toMatch(/needs root/);
    else if (!hasSystemctl) expect(r.err).toMatch(/systemctl not found/);
    else expect(r.err).toMatch(/under a home directory.*ProtectHome/);
    for (const d of Object.values(dirs)) expect(existsSync(d), d).toBe(false);
  });

  it('aborts on a tampered bundle before installing anything', async () => {
    const file = bundleFile(VERSION);
    const original = readFileSync(file);
    const tampered = Buffer.from(original);
    const at = Math.floor(tampered.length / 2);
    tampered[at] = (tampered[at] as number) ^ 0x01;
    writeFileSync(file, tampered);
    try {
      const r = await install([...dirArgs(), '--token', 'enr_unused']);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/checksum mismatch/);
      expect(r.err).toMatch(/nothing was installed/);
    } finally {
      writeFileSync(file, original);
    }
    for (const d of Object.values(dirs)) expect(existsSync(d), d).toBe(false);
  });

  it('a download cut at any point runs nothing', async () => {
    const end = script.lastIndexOf('}');
    const call = script.lastIndexOf('main "$@"');
    const offsets = [1, 100, 1000, Math.floor(end / 2), call, call + 4, call + 8, end - 1, end];
    const before = (await cp.api<{ items: AgentView[] }>('GET', '/api/v1/agents')).body.items.length;
    const t = await createEnrollmentToken(cp);
    for (const n of offsets) {
      const r = await install([...dirArgs(), '--token', t], { input: script.slice(0, n) });
      expect(r.err, `cut at ${n}`).not.toMatch(/dbbackup-install/);
      expect(r.out, `cut at ${n}`).toBe('');
      for (const d of Object.values(dirs)) expect(existsSync(d), `cut at ${n}: ${d}`).toBe(false);
    }
    const after = (await cp.api<{ items: AgentView[] }>('GET', '/api/v1/agents')).body.items.length;
    expect(after).toBe(before);
  });

  it('installs with the npm registry unreachable: the agent runs, enrols and is online', async () => {
    token = await createEnrollmentToken(cp, { site: 'lab' });
    const t0 = Date.now();
    const r = await install([...dirArgs(), '--token', token, '--labels', 'role=primary']);
    expect(r.code, r.err).toBe(0);
    const id = agentId();
    const { value: agent } = await waitFor(
      async () => {
        const a = await getAgent(cp, id);
        return a.status === 'online' ? a : undefined;
      },
      { timeoutMs: 20_000, what: 'installed agent online' },
    );
    const onlineMs = Date.now() - t0;
    expect((agent as AgentView & { labels: Record<string, string> }).labels).toEqual({
      site: 'lab',
      role: 'primary',
    });
    expect(readFileSync(path.join(dirs.prefix, 'current', 'VERSION'), 'utf8').trim()).toBe(VERSION);
    expect(statSync(dirs.state).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dirs.config, 'agent.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dirs.config, 'agent.env'), 'utf8')).toContain(
      `DBBACKUP_SERVER='${cp.url}'`,
    );
    expect(alive(agentPid())).toBe(true);
    // Nothing of the workspace is used: the agent runs from the prefix with its own addon.
    const cmdline = readFileSync(`/proc/${agentPid()}/cmdline`, 'utf8').split('\0');
    // It runs through the bundle's launcher: node with the agent's V8 memory flags (agent/node-flags).
    expect(cmdline).toContain(path.join(dirs.prefix, 'releases', VERSION, 'dist', 'dbbackup-agent.js'));
    for (const flag of readFileSync(path.join(REPO_ROOT, 'agent/node-flags'), 'utf8').trim().split(' '))
      expect(cmdline).toContain(flag);
    console.log(`install.sh: ${r.ms} ms from start to exit; agent listed online ${onlineMs} ms after start`);
  });

  it('keeps the token out of every log, file and process command line or environment', async () => {
    const needle = token;
    const hits: string[] = [];
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      for (const f of ['cmdline', 'environ']) {
        try {
          if (readFileSync(`/proc/${pid}/${f}`).includes(needle)) hits.push(`/proc/${pid}/${f}`);
        } catch {}
      }
    }
    for (const file of Object.keys(snapshot(dirs.prefix, dirs.state, dirs.config))) {
      if (readFileSync(file).includes(needle)) hits.push(file);
    }
    if (cp.proc.lines.some((l) => l.includes(needle))) hits.push('control-plane log');
    expect(hits).toEqual([]);
    // The agent's log is there and does say it enrolled: the search looked at real content.
    expect(readFileSync(path.join(dirs.state, 'agent.log'), 'utf8')).toMatch(/connected|online|hello/i);
  });

  it('takes a first backup with the installed agent', async () => {
    const t0 = Date.now();
    const db = path.join(work, 'first.db');
    execFileSync('sqlite3', [db, 'CREATE TABLE t(v); INSERT INTO t VALUES (1),(2),(3);']);
    const s = await cp.api<{ id: string }>('POST', '/api/v1/storage', {
      kind: 'local',
      name: 'installed-disk',
      directory: path.join(work, 'backups'),
    });
    expect(s.status).toBe(201);
    const t = await cp.api<{ id: string }>('POST', `/api/v1/agents/${agentId()}/targets`, {
      engine: 'sqlite',
      name: 'first',
      connection: { path: db },
      storageId: s.body.id,
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    const { job, backup } = await runBackup(cp, t.body.id);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    expect(backup?.sizeBytes).toBeGreaterThan(0);
    console.log(`install.sh: first backup stored ${Date.now() - t0} ms after the agent was online`);
  });

  it('running it again changes no file and does not restart the agent', async () => {
    const before = snapshot(dirs.prefix, dirs.config);
    const pid = agentPid();
    const r = await install(dirArgs());
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/already installed/);
    expect(r.err).toMatch(/nothing changed/);
    expect(snapshot(dirs.prefix, dirs.config)).toEqual(before);
    expect(agentPid()).toBe(pid);
    expect(alive(pid)).toBe(true);
  });

  it('upgrades in place to a newer bundle, keeping the agent identity; refuses to go back', async () => {
    const id = agentId();
    const pid = agentPid();
    pack(bundles, NEWER);
    const r = await install(dirArgs());
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(path.join(dirs.prefix, 'current', 'VERSION'), 'utf8').trim()).toBe(NEWER);
    expect(readdirSync(path.join(dirs.prefix, 'releases'))).toEqual([NEWER]);
    expect(agentId()).toBe(id);
    expect(agentPid()).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    await waitFor(
      async () => {
        const a = await getAgent(cp, id);
        return a.status === 'online' && (a.facts as { agentVersion?: string })?.agentVersion === NEWER;
      },
      { timeoutMs: 20_000, what: `agent reporting ${NEWER}` },
    );

    const down = await install([...dirArgs(), '--version', VERSION]);
    expect(down.code).not.toBe(0);
    expect(down.err).toMatch(new RegExp(`refusing to replace ${NEWER} with the older ${VERSION}`));
    expect(readFileSync(path.join(dirs.prefix, 'current', 'VERSION'), 'utf8').trim()).toBe(NEWER);
  });

  it('fails with the agent’s own words when the agent it started exits at once', async () => {
    const d = path.join(work, 'exits');
    mkdirSync(d, { recursive: true });
    // A Node.js that runs everything (version checks, enrolment) except the agent itself.
    const node = path.join(d, 'node');
    writeFileSync(
      node,
      `#!/bin/sh\nfor a; do last=$a; done\n[ "$last" = run ] && { echo 'simulated start failure: state dir unusable' >&2; exit 1; }\nexec ${process.execPath} "$@"\n`,
      { mode: 0o755 },
    );
    const r = await install(
      [
        '--no-systemd',
        '--prefix',
        `${d}/opt`,
        '--state-dir',
        `${d}/state`,
        '--config-dir',
        `${d}/etc`,
        '--token',
        await createEnrollmentToken(cp),
      ],
      { env: { DBBACKUP_NODE: node } },
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/the agent exited; its log is/);
    expect(r.err).toContain('simulated start failure: state dir unusable');
    expect(r.ms).toBeLessThan(20_000); // seen as exited, not waited out for 30 s
  });

  it('carries --proxy into the agent environment file', async () => {
    const d = path.join(work, 'proxied');
    const t = await createEnrollmentToken(cp);
    const args = ['--no-systemd', '--no-start', '--prefix', `${d}/opt`, '--state-dir', `${d}/state`];
    const r = await install(
      [...args, '--config-dir', `${d}/etc`, '--token', t, '--proxy', 'http://127.0.0.1:3128'],
      {
        env: { NO_PROXY: '127.0.0.1,localhost' },
      },
    );
    expect(r.code, r.err).toBe(0);
    const envFile = readFileSync(`${d}/etc/agent.env`, 'utf8');
    expect(envFile).toContain("HTTPS_PROXY='http://127.0.0.1:3128'");
    expect(envFile).toContain("NO_PROXY='127.0.0.1,localhost'");
    expect(existsSync(`${d}/state/agent.pid`)).toBe(false); // --no-start
    const bad = await install([...args, '--config-dir', `${d}/etc`, '--proxy', "http://x'; reboot; '"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--proxy: unexpected characters/);
  });

  it('--dry-run of a systemd install says what it would do and changes nothing', async () => {
    const fresh = path.join(work, 'dry');
    const args = ['--dry-run', '--prefix', `${fresh}/opt`, '--state-dir', `${fresh}/state`];
    const r = await install([...args, '--config-dir', `${fresh}/etc`, '--token', 'enr_dry']);
    // Without systemd running here the unit cannot be exercised for real; its plan can.
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/would install \d+\.\d+\.\d+ into/);
    expect(r.err).toMatch(/would run: useradd --system .* dbbackup|dbbackup user|would run: adduser/);
    expect(r.err).toMatch(/would enrol with/);
    expect(r.err).toContain(`would write ${fresh}/etc/agent.env`);
    expect(r.err).toContain('would write /etc/systemd/system/dbbackup-agent.service');
    expect(r.err).toMatch(/would run: systemctl (restart|start) dbbackup-agent/);
    expect(r.err).not.toContain('enr_dry');
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync('/etc/systemd/system/dbbackup-agent.service')).toBe(false);
  });

  it('--uninstall leaves nothing but the state directory', async () => {
    const pid = agentPid();
    const r = await install([...dirArgs(), '--uninstall']);
    expect(r.code, r.err).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(dirs.prefix)).toBe(false);
    expect(existsSync(dirs.config)).toBe(false);
    expect(existsSync(path.join(dirs.state, 'agent.json'))).toBe(true);
    const left = readdirSync(path.join(work, 'host'), { recursive: true }) as string[];
    expect(left.filter((f) => !f.startsWith('state')).sort()).toEqual(['etc', 'opt']);
    expect(readdirSync(path.join(work, 'host', 'etc'))).toEqual([]);
    expect(readdirSync(path.join(work, 'host', 'opt'))).toEqual([]);
  });
});

describe('packaging', () => {
  it('the generated systemd unit passes systemd-analyze verify', async () => {
    if (!existsSync('/usr/bin/systemd-analyze') && !existsSync('/bin/systemd-analyze')) {
      // "where that command exists": the unit text is still checked below.
      console.log('systemd-analyze not installed: only the unit text is checked');
    }
    const dir = path.join(work, 'unit');
    mkdirSync(dir);
    // systemd-analyze checks that ExecStart (the bundle's launcher) is executable.
    const prefix = path.join(dir, 'opt', 'dbbackup-agent');
    mkdirSync(path.join(prefix, 'current', 'bin'), { recursive: true });
    writeFileSync(path.join(prefix, 'current', 'bin', 'dbbackup-agent'), '#!/bin/sh\n', { mode: 0o755 });
    const r = await install(['--print-unit', '--prefix', prefix, '--server', cp.url]);
    expect(r.code, r.err).toBe(0);
    const unit = r.out;
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/dbbackup-agent',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'CapabilityBoundingSet=',
      'Restart=on-failure',
      'User=dbbackup',
      'EnvironmentFile=/etc/dbbackup/agent.env',
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    expect(unit).toMatch(/^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6/m);
    const file = path.join(dir, 'dbbackup-agent.service');
    writeFileSync(file, unit);
    if (existsSync('/usr/bin/systemd-analyze') || existsSync('/bin/systemd-analyze')) {
      const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      expect(v.status, v.stderr).toBe(0);
      expect(v.stderr.split('\n').filter((l) => l.includes('dbbackup-agent'))).toEqual([]);
    }
  });

  it('docker compose accepts docker-compose.yml', () => {
    const compose = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
    const [cmd, args] = compose ? ['docker', ['compose']] : ['docker-compose', []];
    const r = spawnSync(cmd, [...args, '-f', path.join(REPO_ROOT, 'docker-compose.yml'), 'config', '-q'], {
      encoding: 'utf8',
    });
    expect(r.error, `${cmd} not found: .ci/run installs docker-compose`).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
  });

  it('every part reports the one release version', () => {
    const versions = ['agent', 'control-plane', 'proto'].map(
      (p) => JSON.parse(readFileSync(path.join(REPO_ROOT, p, 'package.json'), 'utf8')).version,
    );
    expect(versions).toEqual([VERSION, VERSION, VERSION]);
    const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    expect(run(path.join(REPO_ROOT, 'agent/bin/dbbackup-agent'), ['--version'])).toBe(VERSION);
    expect(run(path.join(REPO_ROOT, 'control-plane/bin/dbbackup-control-plane'), ['--version'])).toBe(
      VERSION,
    );
    expect(run('sh', [path.join(REPO_ROOT, 'install/install.sh'), '--version'])).toBe(VERSION);
  });
});
