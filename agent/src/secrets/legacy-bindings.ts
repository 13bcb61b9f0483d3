import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@dbbackup/logger';
import { destinationOf, AgentConfig as WireConfig } from '@dbbackup/proto';
import type { AgentStore } from '../store/agent-store.js';

/**
 * Secret references from before 0.1.2 (a file path or an environment variable the
 * control plane named) keep working for the targets that had them when this version
 * first started, bound to the destination each had then; recorded once, in the state
 * directory (metadata, never a secret).
 */
export async function legacyBindings(
  stateDir: string,
  store: AgentStore,
  log: Logger,
): Promise<Record<string, string | null>> {
  const file = path.join(stateDir, 'legacy-secret-bindings.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, string | null>;
  } catch {}
  const raw = await store.getMeta('config');
  const bindings: Record<string, string | null> = {};
  if (raw) {
    const parsed = WireConfig.safeParse(JSON.parse(raw));
    for (const { target } of parsed.success ? parsed.data.targets : [])
      if (target.secretRef.kind === 'env' || target.secretRef.kind === 'passfile')
        bindings[target.id] = destinationOf(target) ?? null;
  }
  await writeFile(file, `${JSON.stringify(bindings, null, 2)}\n`, { mode: 0o600 });
  if (Object.keys(bindings).length)
    log.warn(
      { targets: Object.keys(bindings) },
      'bound the secret references of existing targets to their current destinations; declare named secrets to change them',
    );
  return bindings;
}
