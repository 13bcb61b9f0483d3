import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type Context, Hono } from 'hono';
import { SAFE_URL } from '../config.js';
import { ProblemError } from '../problem.js';
import { latestBundle, listBundles, PLATFORM, VERSION } from '../services/agent-bundles.js';

/** install/install.sh in a checkout (and in the image). */
export const INSTALLER_PATH = fileURLToPath(new URL('../../../install/install.sh', import.meta.url));

export interface InstallDeps {
  /** DBBACKUP_PUBLIC_URL; otherwise the URL the request came in on. */
  publicUrl: string | undefined;
  agentBundleDir: string;
}

/**
 * The URL agents should use for this control plane. It is written into a shell
 * script, so a Host header that is not a plain host[:port] is refused rather than
 * echoed into it.
 */
export function publicUrlOf(c: Context, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl;
  const origin = new URL(c.req.url).origin;
  if (!SAFE_URL.test(origin)) {
    throw new ProblemError(
      400,
      'Bad Request',
      'cannot derive this control plane URL from the request Host header; set DBBACKUP_PUBLIC_URL',
    );
  }
  return origin;
}

/** The line an operator pastes on a database host. */
export const installCommand = (url: string, token: string) =>
  `curl -fsSL ${url}/install.sh | sudo sh -s -- --token ${token}`;

/**
 * Unauthenticated, like any installer download: the script (with this control
 * plane's URL filled in), the newest bundle's version and checksum for a
 * platform, and the bundle itself.
 */
export function installRoutes(d: InstallDeps) {
  const r = new Hono();

  r.get('/install.sh', async (c) => {
    const url = publicUrlOf(c, d.publicUrl);
    const script = (await readFile(INSTALLER_PATH, 'utf8')).replace(
      "default_server='@@DBBACKUP_SERVER@@'",
      `default_server='${url}'`,
    );
    return c.body(script, 200, {
      'content-type': 'text/x-shellscript; charset=utf-8',
      'cache-control': 'no-store',
    });
  });

  // Plain key=value lines, for a POSIX shell to read without a JSON parser.
  r.get('/agent/release', async (c) => {
    const platform = c.req.query('platform') ?? '';
    if (!PLATFORM.test(platform)) {
      throw new ProblemError(
        400,
        'Bad Request',
        `platform: expected <os>-<arch>-node<abi> such as linux-x64-node115, got ${JSON.stringify(platform.slice(0, 64))}`,
      );
    }
    const version = c.req.query('version');
    if (version !== undefined && !VERSION.test(version)) {
      throw new ProblemError(
        400,
        'Bad Request',
        `version: expected X.Y.Z, got ${JSON.stringify(version.slice(0, 64))}`,
      );
    }
    const bundles = await listBundles(d.agentBundleDir);
    const b = latestBundle(bundles, platform, version);
    if (!b) {
      const have = [...new Set(bundles.map((x) => x.platform))].sort();
      throw new ProblemError(
        404,
        'Not Found',
        `no agent bundle${version ? ` ${version}` : ''} for ${platform} on this control plane (it has: ${have.join(', ') || 'none'})`,
        { extra: { platforms: have } },
      );
    }
    const lines = [
      `version=${b.version}`,
      `platform=${b.platform}`,
      `file=${b.file}`,
      `url=/agent/files/${b.file}`,
      `sha256=${b.sha256}`,
      `size=${b.size}`,
    ];
    return c.text(`${lines.join('\n')}\n`, 200, { 'cache-control': 'no-store' });
  });

  r.get('/agent/files/:file', async (c) => {
    const name = c.req.param('file');
    const b = (await listBundles(d.agentBundleDir)).find((x) => x.file === name);
    if (!b) throw new ProblemError(404, 'Not Found', 'no such agent bundle');
    const stream = Readable.toWeb(createReadStream(path.join(d.agentBundleDir, b.file)));
    return c.body(stream as ReadableStream, 200, {
      'content-type': 'application/gzip',
      'content-length': String(b.size),
    });
  });

  return r;
}
