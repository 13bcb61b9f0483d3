import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { destinationOf, type TargetSpec } from '@dbbackup/proto';
import { z } from 'zod';
import { agentConfig } from '../config.js';

/**
 * Secrets an agent may use are declared on its host, each bound to the destinations
 * (a unix socket path, or host:port) it may be sent to. The control plane names them
 * and nothing else; it cannot name a file or an environment variable. Sources:
 *
 * - the secrets file (DBBACKUP_SECRETS_FILE, default /etc/dbbackup/secrets.json,
 *   owner-only): `{ "<name>": { "password" | "passwordFile" | "env": …, "allow": [...] } }`,
 *   written by `dbbackup-agent secret add`;
 * - the environment: DBBACKUP_SECRET_<NAME>=<password> with DBBACKUP_SECRET_<NAME>_ALLOW=<a,b>.
 *
 * The agent's state directory (its keys among them) is never a secret source.
 */
export const SecretEntry = z
  .object({
    password: z.string().min(1).max(4096).optional(),
    passwordFile: z.string().startsWith('/').max(4096).optional(),
    env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)
      .optional(),
    allow: z.array(z.string().min(1).max(1024)).min(1).max(64),
  })
  .strict()
  .refine((e) => [e.password, e.passwordFile, e.env].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of password, passwordFile, env',
  });
export type SecretEntry = z.infer<typeof SecretEntry>;
export const SecretsFile = z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/), SecretEntry);

/** A secret refused: not declared, not allowed to go there, or unreadable. */
export class SecretRefused extends Error {
  override name = 'SecretRefused';
  readonly code = 'secret-refused';
}

export interface HostSecretsOptions {
  file: string;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  /** Legacy (pre-0.1.2) references bound at upgrade: target id -> destination. */
  legacyBindings?: Record<string, string | null>;
}

export class HostSecrets {
  readonly #o: HostSecretsOptions;
  constructor(o: HostSecretsOptions) {
    this.#o = { ...o, legacyBindings: { ...(o.legacyBindings ?? {}) } };
  }

  /** Every declared secret, from the file and the environment (the environment wins). */
  entries(): Record<string, SecretEntry> {
    const out: Record<string, SecretEntry> = {};
    if (existsSync(this.#o.file)) {
      const parsed = SecretsFile.safeParse(JSON.parse(readFileSync(this.#o.file, 'utf8')));
      if (!parsed.success)
        throw new SecretRefused(
          `${this.#o.file} is not a valid secrets file: ${parsed.error.issues[0]?.message}`,
        );
      Object.assign(out, parsed.data);
    }
    for (const [k, v] of Object.entries(this.#o.env)) {
      const m = /^DBBACKUP_SECRET_([A-Za-z0-9_]+)$/.exec(k);
      if (!m?.[1] || m[1].endsWith('_ALLOW') || v === undefined) continue;
      const allow = (this.#o.env[`${k}_ALLOW`] ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (allow.length) out[m[1].toLowerCase().replace(/_/g, '-')] = { password: v, allow };
    }
    return out;
  }

  /**
   * The password of a target's secret, only if it may be sent where the target
   * connects. Undefined when the target names none; throws SecretRefused otherwise.
   */
  passwordFor(t: TargetSpec): string | undefined {
    const s = t.secretRef;
    if (s.kind === 'none') return undefined;
    const dest = destinationOf(t);
    if (s.kind === 'secret') {
      const e = this.entries()[s.name];
      if (!e)
        throw new SecretRefused(
          `no secret named ${s.name} is declared on this host (dbbackup-agent secret add ${s.name} --allow <destination>)`,
        );
      if (!dest || !e.allow.includes(dest))
        throw new SecretRefused(
          `secret ${s.name} may not be sent to ${dest ?? 'this target'}; it is bound to ${e.allow.join(', ')}`,
        );
      return this.#read(s.name, e);
    }
    // Before 0.1.2: only for the targets that used it then, and only to the same destination.
    const bound = this.#o.legacyBindings?.[t.id];
    if (bound === undefined)
      throw new SecretRefused(
        `a ${s.kind} secret reference is no longer accepted for new targets; declare a named secret (dbbackup-agent secret add)`,
      );
    if (bound !== dest)
      throw new SecretRefused(
        `this target's ${s.kind} secret was bound to ${bound} when the agent was upgraded; it is not sent to ${dest}`,
      );
    if (s.kind === 'passfile') this.#outsideState(s.path);
    return undefined;
  }

  #read(name: string, e: SecretEntry): string {
    if (e.password !== undefined) return e.password;
    if (e.env !== undefined) {
      const v = this.#o.env[e.env];
      if (v === undefined)
        throw new SecretRefused(`secret ${name}: environment variable ${e.env} is not set`);
      return v;
    }
    const file = e.passwordFile as string;
    this.#outsideState(file);
    try {
      return (readFileSync(file, 'utf8').split('\n')[0] ?? '').trim();
    } catch (err) {
      throw new SecretRefused(`secret ${name}: cannot read ${file}: ${(err as Error).message}`);
    }
  }

  /** The state directory (keys, store) is never a secret source, by whatever path it is reached. */
  #outsideState(file: string) {
    const state = safeRealpath(this.#o.stateDir);
    const real = safeRealpath(file);
    if (real === state || real.startsWith(`${state}${path.sep}`))
      throw new SecretRefused(
        `${file} is inside the agent's state directory, which is never a secret source`,
      );
    const st = statSync(real, { throwIfNoEntry: false });
    if (st && !st.isFile()) throw new SecretRefused(`${file} is not a regular file`);
  }
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

let current: HostSecrets | undefined;

/** The agent's host secrets (set once at start; engines read them through `hostSecrets()`). */
export function setHostSecrets(h: HostSecrets) {
  current = h;
}

export function hostSecrets(): HostSecrets {
  if (!current)
    current = new HostSecrets({
      file: agentConfig().secretsFile,
      env: process.env,
      stateDir: agentConfig().stateDir,
    });
  return current;
}
