import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { joinKey, type StorageSpec } from '@dbbackup/proto';
import { FileWriter } from './file-writer.js';
import type { ObjectStore, ObjectWriter } from './object-store.js';

type LocalSpec = Extract<StorageSpec, { kind: 'local' }>;
const PARTIAL = '.partial';

/** A directory as object storage: write to a temporary name, fsync, rename; never a half-written object. */
export class LocalStore implements ObjectStore {
  readonly kind = 'local' as const;
  readonly retries = 0;
  readonly #dir: string;
  readonly #prefix: string;

  constructor(spec: LocalSpec) {
    this.#dir = path.resolve(spec.directory);
    this.#prefix = spec.prefix;
  }

  key(relative: string) {
    return joinKey(this.#prefix, relative);
  }

  #path(key: string) {
    const p = path.resolve(this.#dir, key);
    if (!p.startsWith(this.#dir + path.sep))
      throw new Error(`object key escapes the storage directory: ${key}`);
    return p;
  }

  async createWriter(key: string): Promise<ObjectWriter> {
    const final = this.#path(key);
    const tmp = `${final}${PARTIAL}`;
    await mkdir(path.dirname(final), { recursive: true });
    const stream = new FileWriter(await open(tmp, 'wx', 0o600));
    const finished = new Promise<void>((resolve, reject) => {
      stream.once('finish', resolve);
      stream.once('error', reject);
    });
    finished.catch(() => {});
    return {
      stream,
      async commit() {
        await finished;
        await stream.sync();
        await rename(tmp, final);
        await syncDir(path.dirname(final));
        return { sizeBytes: (await stat(final)).size };
      },
      async abort() {
        stream.destroy();
        await rm(tmp, { force: true });
      },
    };
  }

  async putSmall(key: string, body: Buffer) {
    const final = this.#path(key);
    await mkdir(path.dirname(final), { recursive: true });
    const tmp = `${final}${PARTIAL}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
    await syncDir(path.dirname(final));
  }

  async read(key: string): Promise<Readable> {
    const p = this.#path(key);
    await stat(p);
    return createReadStream(p, { highWaterMark: 1024 * 1024 });
  }

  /** The object in chunks of one reused 1 MiB buffer (see ObjectStore.readReused). */
  async *readReused(key: string): AsyncGenerator<Buffer> {
    const fh = await open(this.#path(key), 'r');
    try {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) return;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  async size(key: string) {
    try {
      return (await stat(this.#path(key))).size;
    } catch {
      return undefined;
    }
  }

  async cleanupUnfinished(key: string) {
    const final = this.#path(key);
    const names = await readdir(path.dirname(final)).catch(() => [] as string[]);
    const base = path.basename(final);
    let n = 0;
    for (const name of names) {
      if (name.startsWith(base) && name.endsWith(PARTIAL)) {
        await rm(path.join(path.dirname(final), name), { force: true });
        n++;
      }
    }
    return n;
  }

  async list(prefix: string) {
    const root = this.#dir;
    const out: { key: string; size: number; modifiedAt: Date }[] = [];
    const walk = async (rel: string) => {
      for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (r.startsWith(prefix) || prefix.startsWith(`${r}/`)) await walk(r);
        } else if (r.startsWith(prefix) && !r.endsWith(PARTIAL)) {
          const st = await stat(path.join(root, r));
          out.push({ key: r, size: st.size, modifiedAt: st.mtime });
        }
      }
    };
    const top = await stat(root).catch(() => undefined);
    if (top) await walk('');
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async delete(key: string) {
    await rm(this.#path(key), { force: true });
    await syncDir(path.dirname(this.#path(key))).catch(() => {});
  }
}

async function syncDir(dir: string) {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
