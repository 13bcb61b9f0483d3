import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Readable, Stream } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TargetSpec } from '@dbbackup/proto';
import tar from 'tar-stream';
import { AgentError } from '../agent-error.js';
import { agentConfig } from '../config.js';
import { childExit, retained } from '../pipeline/child-exit.js';
import type { DumpAux, DumpHandle, Engine } from './engine.js';
import { toolError } from './engine-support.js';
import { libpqEnv } from './postgres-client.js';
import {
  type BasePlan,
  basebackupArgs,
  chainMeta,
  commitChainState,
  manifestTap,
  planBaseBackup,
  readChainState,
} from './postgres-incremental.js';
import { type ClusterFacts, checkPhysicalPrerequisites } from './postgres-prereqs.js';
import { pickTool } from './postgres-tools.js';

/**
 * Physical base backups of a whole PostgreSQL cluster: `pg_basebackup` writing one tar
 * (data directory, backup_label, backup_manifest, and with `-X fetch` the WAL the
 * backup needs to be consistent) to its stdout, through the same compression,
 * encryption and hashing as every dump. The start and end LSN, timeline, system
 * identifier and server version go into the metadata (engineMeta): a point-in-time
 * restore chooses its base backup and WAL by them.
 */

/** The lines pg_basebackup -v prints about the WAL the backup spans. */
export function parseBasebackupLog(stderr: string): {
  startLsn?: string;
  stopLsn?: string;
  timeline?: number;
} {
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i.exec(stderr);
  const stop = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i.exec(stderr);
  return {
    ...(start ? { startLsn: start[1]!, timeline: Number(start[2]) } : {}),
    ...(stop ? { stopLsn: stop[1]! } : {}),
  };
}

/**
 * Whether this base backup is incremental (options.incrementalFullEvery, PostgreSQL 17),
 * and on a server that could take one, the tap keeping its manifest for the next.
 */
async function incrementalChain(
  t: TargetSpec,
  facts: ClusterFacts,
  toolMajor: number,
  aux: DumpAux | undefined,
  log: (m: string) => void,
) {
  const fullEvery = t.options.incrementalFullEvery;
  const none = { plan: { mode: 'full', reason: '' } as BasePlan, tap: undefined, committed: undefined };
  if (!fullEvery) return none;
  const { stateDir } = agentConfig();
  const last = await readChainState(stateDir, t.id);
  const lastStillStored = last && aux?.exists ? await aux.exists(last.metaKey) : false;
  const plan = planBaseBackup({
    fullEvery,
    serverVersionNum: facts.versionNum,
    toolMajor,
    summarizeWal: facts.summarizeWal,
    last,
    lastStillStored,
  });
  log(
    plan.mode === 'incremental'
      ? `incremental base backup against ${plan.parent.backupId} (base backup ${plan.chainLength} of a chain of ${fullEvery})`
      : `full base backup: ${plan.reason}`,
  );
  if (facts.versionNum < 170000 || toolMajor < 17) return { ...none, plan };
  const tap = await manifestTap(stateDir, t.id, randomUUID());
  const committed = async (c: { backupId: string; metaKey: string }) => {
    await tap.captured();
    await commitChainState(stateDir, t.id, tap.file, {
      ...c,
      chainRootId: plan.mode === 'incremental' ? plan.parent.chainRootId : c.backupId,
      chainLength: plan.mode === 'incremental' ? plan.chainLength : 1,
    });
  };
  return { plan, tap, committed };
}

export const PITR_ONLY =
  'a physical base backup is restored into a new data directory, to a point in time: ' +
  'POST /api/v1/targets/{id}/restore, or `dbbackup restore TARGET --to-time … --data-dir …`';

export const physicalEngine: Engine = {
  id: 'postgresql',
  formatExtension: 'base.tar',

  async testConnection(t) {
    const facts = await checkPhysicalPrerequisites(t);
    const tool = await pickTool('pg_basebackup', facts.major);
    await pickTool('pg_receivewal', facts.major);
    return { serverVersion: facts.version, toolVersion: tool.version, toolPath: tool.path };
  },

  async dump(t, log, into, aux) {
    const facts = await checkPhysicalPrerequisites(t);
    const tool = await pickTool('pg_basebackup', facts.major);
    log(`using ${tool.path} (${tool.version}) for server ${facts.version}, system ${facts.systemIdentifier}`);
    const chain = await incrementalChain(t, facts, tool.major, aux, log);
    // -X fetch: the WAL between the backup's start and end travels inside the tar, so the base
    // backup restores to a consistent state on its own; the archive adds everything after it.
    const args = basebackupArgs(chain.plan);
    const child = spawn(tool.path, args, {
      env: { ...process.env, ...libpqEnv(t) },
      stdio: ['ignore', into && !chain.tap ? (into as unknown as Stream) : 'pipe', 'pipe'],
    });
    const engineMeta: Record<string, string> = {
      kind: 'physical',
      systemIdentifier: facts.systemIdentifier,
      serverVersionNum: String(facts.versionNum),
      walSegmentBytes: String(facts.walSegmentBytes),
      ...(facts.dataDirectory ? { dataDirectory: facts.dataDirectory } : {}),
      ...chainMeta(chain.plan),
    };
    const done = childExit(child).then(
      (e) => {
        if (e.code !== 0)
          throw toolError('pg_basebackup', {
            exitCode: e.code ?? undefined,
            signal: e.signal ?? undefined,
            stderr: e.stderr,
          });
        const span = parseBasebackupLog(e.stderr);
        if (!span.startLsn || !span.stopLsn)
          throw new AgentError('tool-failed', 'pg_basebackup did not report the WAL start and end points');
        // Filled in before the dump counts as done: the job writes engineMeta into meta.json after it.
        Object.assign(engineMeta, {
          startLsn: span.startLsn,
          stopLsn: span.stopLsn,
          timeline: String(span.timeline ?? facts.timeline),
        });
        log(`base backup spans WAL ${span.startLsn} to ${span.stopLsn} on timeline ${engineMeta.timeline}`);
      },
      (err: Error) => {
        throw new AgentError('tool-failed', `pg_basebackup: ${err.message}`);
      },
    );
    done.catch(() => {});
    const out = retained(child.stdout);
    return {
      // With a manifest to keep, the tar passes through the agent; else pg_basebackup writes into zstd.
      stdout: chain.tap && out ? out.pipe(chain.tap.through) : out,
      done,
      serverVersion: facts.version,
      toolVersion: tool.version,
      tables: Promise.resolve([]),
      sizeHint: facts.totalBytes,
      engineMeta,
      committed: chain.committed,
    } satisfies DumpHandle;
  },

  /** A readable base backup: a tar holding backup_label and PG_VERSION. */
  async list(input: Readable) {
    const ex = tar.extract();
    const seen = new Set<string>();
    let entries = 0;
    ex.on('entry', (header, stream, next) => {
      entries++;
      seen.add(header.name.replace(/^\.\//, ''));
      stream.on('end', next);
      stream.resume();
    });
    await pipeline(input, ex);
    for (const need of ['backup_label', 'PG_VERSION'])
      if (!seen.has(need))
        throw new AgentError('empty-dump', `the base backup has no ${need}: not a pg_basebackup tar`);
    return { entries };
  },

  async restore() {
    throw new AgentError('restore-kind', PITR_ONLY);
  },

  async postRestoreCheck() {
    return [];
  },
};
