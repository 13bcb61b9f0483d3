// Pack the built agent (dist/ + native/, see build.mjs) into the release bundle
// the control plane serves to install.sh:
//   <out>/dbbackup-agent-<version>-<os>-<arch>-node<abi>.tar.gz  and  <same>.sha256
// The addon is built for this Node's ABI, so the bundle is named after it. The
// archive is reproducible: sorted entries, fixed mtimes, no gzip timestamp.
//   node pack.mjs [--out DIR] [--version X.Y.Z]
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

const { values } = parseArgs({
  options: { out: { type: 'string' }, version: { type: 'string' } },
});
const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.resolve(values.out ?? path.join(here, '../dist/agent-bundles'));
const version = values.version ?? JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf8')).version;
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) throw new Error(`bad version ${version}`);
const platform = `${process.platform}-${process.arch}-node${process.versions.modules}`;
const base = `dbbackup-agent-${version}-${platform}`;

// V8 flags that keep the idle agent small (see node-flags and the README's performance section).
const nodeFlags = readFileSync(path.join(here, 'node-flags'), 'utf8').trim();
if (!/^(--[a-z0-9-]+(=[0-9]+)? ?)+$/.test(nodeFlags)) throw new Error(`bad node-flags: ${nodeFlags}`);
const LAUNCHER = `#!/bin/sh
# dbbackup-agent ${version}: runs the bundled agent with the Node.js in DBBACKUP_NODE (or PATH).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$(readlink -f -- "$0")")/.." && pwd)
exec "\${DBBACKUP_NODE:-node}" ${nodeFlags} "$here/dist/dbbackup-agent.js" "$@"
`;

const files = [
  [
    'package.json',
    `${JSON.stringify({ name: 'dbbackup-agent', version, type: 'module', private: true }, null, 2)}\n`,
    0o644,
  ],
  ['VERSION', `${version}\n`, 0o644],
  ['PLATFORM', `${platform}\n`, 0o644],
  ['bin/dbbackup-agent', LAUNCHER, 0o755],
];
for (const dir of ['dist', 'native']) {
  const abs = path.join(here, dir);
  for (const name of readdirSync(abs).sort()) {
    if (name.endsWith('.map')) continue;
    files.push([`${dir}/${name}`, readFileSync(path.join(abs, name)), 0o644]);
  }
}
if (!files.some(([n]) => n === 'native/better_sqlite3.node')) throw new Error('run node build.mjs first');

const pack = tar.pack();
const chunks = [];
pack.on('data', (c) => chunks.push(c));
const done = new Promise((resolve, reject) => {
  pack.on('end', resolve);
  pack.on('error', reject);
});
const mtime = new Date('2026-01-01T00:00:00Z');
for (const [name, body, mode] of files.sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
  const full = `${base}/${name}`;
  pack.entry({ name: full, mode, mtime, uid: 0, gid: 0, uname: 'root', gname: 'root' }, body);
}
pack.finalize();
await done;
const tgz = gzipSync(Buffer.concat(chunks), { level: 9 });
const sha256 = createHash('sha256').update(tgz).digest('hex');
mkdirSync(out, { recursive: true });
const file = path.join(out, `${base}.tar.gz`);
writeFileSync(`${file}.tmp`, tgz);
renameSync(`${file}.tmp`, file);
writeFileSync(`${file}.sha256`, `${sha256}  ${base}.tar.gz\n`);
process.stdout.write(`${file} ${statSync(file).size} bytes sha256 ${sha256}\n`);
