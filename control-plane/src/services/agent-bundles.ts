import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * The agent release bundles this control plane serves to install.sh, found in
 * one directory (agent/pack.mjs writes them):
 *   dbbackup-agent-<version>-<os>-<arch>-node<abi>.tar.gz + .sha256
 * The checksum is the one published with the bundle, not recomputed here, so a
 * bundle altered after it was packed is caught by the installer. The directory
 * is read on every request: dropping a newer bundle in is a release.
 */
export interface AgentBundle {
  version: string;
  platform: string;
  file: string;
  sha256: string;
  size: number;
}

const NAME = /^dbbackup-agent-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)-([a-z0-9]+-[a-z0-9]+-node\d+)\.tar\.gz$/;
export const VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
export const PLATFORM = /^[a-z0-9]+-[a-z0-9]+-node\d{2,4}$/;

/** Compare X.Y.Z[-pre] versions: numeric parts, then a pre-release sorts before the release. */
export function compareVersions(a: string, b: string): number {
  const [ca, pa = ''] = a.split('-', 2) as [string, string?];
  const [cb, pb = ''] = b.split('-', 2) as [string, string?];
  const na = ca.split('.').map(Number);
  const nb = cb.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (na[i] ?? 0) - (nb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (pa === pb) return 0;
  if (pa === '') return 1;
  if (pb === '') return -1;
  return pa < pb ? -1 : 1;
}

export async function listBundles(dir: string): Promise<AgentBundle[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: AgentBundle[] = [];
  for (const file of names) {
    const m = NAME.exec(file);
    if (!m) continue;
    const sum = await readFile(path.join(dir, `${file}.sha256`), 'utf8').catch(() => '');
    const sha256 = /^([0-9a-f]{64})\b/.exec(sum)?.[1];
    if (!sha256) continue; // never serve a bundle without its published checksum
    const st = await stat(path.join(dir, file)).catch(() => undefined);
    if (!st?.isFile()) continue;
    out.push({ version: m[1] as string, platform: m[2] as string, file, sha256, size: st.size });
  }
  return out;
}

/** The newest of `bundles` for a platform (or the one of that version), or undefined. */
export function latestBundle(
  bundles: AgentBundle[],
  platform: string,
  version?: string,
): AgentBundle | undefined {
  const all = bundles.filter(
    (b) => b.platform === platform && (version === undefined || b.version === version),
  );
  all.sort((a, b) => compareVersions(b.version, a.version));
  return all[0];
}
