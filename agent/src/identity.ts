import { createPrivateKey, type KeyObject, randomUUID, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JWK } from 'jose';

/** What enrolment leaves in the state directory. */
export interface Enrollment {
  agentId: string;
  server: string;
  /** The control plane's cluster id; the audience of every connect token. */
  audience: string;
  enrolledAt: string;
}

export interface Identity extends Enrollment {
  signingKey: KeyObject;
}

const files = (stateDir: string) => ({
  enrollment: path.join(stateDir, 'agent.json'),
  signing: path.join(stateDir, 'keys', 'signing.jwk.json'),
  encryption: path.join(stateDir, 'keys', 'encryption.jwk.json'),
});

export class NotEnrolledError extends Error {
  constructor(stateDir: string) {
    super(
      `this agent is not enrolled (no ${files(stateDir).enrollment}); run: dbbackup-agent enroll --server URL --token TOKEN`,
    );
    this.name = 'NotEnrolledError';
  }
}

export function isEnrolled(stateDir: string) {
  return existsSync(files(stateDir).enrollment);
}

async function writePrivate(file: string, data: string) {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/**
 * Make the agent's two key pairs: Ed25519 to sign its connect tokens and X25519
 * for data keys the control plane re-wraps to it. Private halves stay in the
 * state directory (0600); the public halves are returned for enrolment.
 */
export async function createKeys(stateDir: string): Promise<{ signingPublic: JWK; encryptionPublic: JWK }> {
  const f = files(stateDir);
  const { exportJWK, generateKeyPair } = await import('jose');
  const sign = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const enc = await generateKeyPair('ECDH-ES', { crv: 'X25519', extractable: true });
  const signPriv = await exportJWK(sign.privateKey);
  const encPriv = await exportJWK(enc.privateKey);
  await writePrivate(f.signing, JSON.stringify(signPriv));
  await writePrivate(f.encryption, JSON.stringify(encPriv));
  const { d: _d1, ...signingPublic } = signPriv;
  const { d: _d2, ...encryptionPublic } = encPriv;
  return { signingPublic, encryptionPublic };
}

export async function saveEnrollment(stateDir: string, e: Enrollment) {
  await writePrivate(files(stateDir).enrollment, `${JSON.stringify(e, null, 2)}\n`);
}

export async function readEnrollment(stateDir: string): Promise<Enrollment> {
  if (!isEnrolled(stateDir)) throw new NotEnrolledError(stateDir);
  return JSON.parse(await readFile(files(stateDir).enrollment, 'utf8')) as Enrollment;
}

export async function loadIdentity(stateDir: string): Promise<Identity> {
  const e = await readEnrollment(stateDir);
  const jwk = JSON.parse(await readFile(files(stateDir).signing, 'utf8')) as JWK;
  const signingKey = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  return { ...e, signingKey };
}

/**
 * A short-lived, single-use token that proves this agent holds its enrolled key:
 * a compact EdDSA JWT (RFC 8037) the control plane verifies with jose. Signed with
 * node:crypto directly so that the idle agent does not load jose for one signature
 * a connection (jose is loaded with the jobs that wrap and unwrap data keys).
 */
export async function connectToken(id: Identity, lifetimeSeconds = 120): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ alg: 'EdDSA', typ: 'JWT' })}.${part({
    sub: id.agentId,
    aud: id.audience,
    iat: now,
    exp: now + lifetimeSeconds,
    jti: randomUUID(),
  })}`;
  return `${input}.${sign(null, Buffer.from(input), id.signingKey).toString('base64url')}`;
}

/** The agent's X25519 private key: the control plane re-wraps data keys to its public half for restores. */
export async function loadEncryptionKey(stateDir: string): Promise<JWK> {
  return JSON.parse(await readFile(files(stateDir).encryption, 'utf8')) as JWK;
}
