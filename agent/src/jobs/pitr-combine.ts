import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupMetaSummary, StorageSpec } from '@dbbackup/proto';
import { execa } from 'execa';
import { AgentError } from '../agent-error.js';
import { combineArgs } from '../engines/postgres-incremental.js';
import { exactTool } from '../engines/postgres-tools.js';
import type { JobContext } from './job-context.js';
import { unpackBase } from './pitr-files.js';

type BaseRef = {
  backupId: string;
  storage: StorageSpec;
  meta: BackupMetaSummary;
  wrappedKeyForAgent: string;
};

/**
 * An incremental base backup's chain made into one data directory: each backup, the full
 * one first, unpacked beside `dir` (in `<dir>.dbbackup-parts`, removed afterwards), then
 * `pg_combinebackup` of the server's own version writes the synthetic full backup into `dir`.
 */
export async function combineChain(chain: BaseRef[], dir: string, ctx: JobContext) {
  const versionNum = Number(chain[chain.length - 1]!.meta.engineMeta?.serverVersionNum ?? 0);
  const tool = await exactTool('pg_combinebackup', Math.floor(versionNum / 10000));
  const parts = `${dir}.dbbackup-parts`;
  await rm(parts, { recursive: true, force: true });
  try {
    const dirs: string[] = [];
    for (const [i, ref] of chain.entries()) {
      const d = path.join(parts, String(i));
      await unpackBase(ref, d, ctx);
      dirs.push(d);
    }
    ctx.log(
      'info',
      `combining ${chain.length} base backups (the full ${chain[0]!.backupId} and ${chain.length - 1} incremental) with ${tool.path}`,
    );
    const r = await execa(tool.path, combineArgs(dirs, dir), {
      reject: false,
      stdin: 'ignore',
      timeout: 6 * 3_600_000,
    });
    if (r.exitCode !== 0)
      throw new AgentError('combine-failed', `pg_combinebackup failed: ${String(r.stderr).slice(-2000)}`);
  } finally {
    await rm(parts, { recursive: true, force: true });
  }
}
