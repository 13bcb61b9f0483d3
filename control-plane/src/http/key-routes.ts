import { Hono } from 'hono';
import { kekPrivateJwk } from '../crypto/key-encryption-key.js';
import { conflict, notFound } from '../problem.js';
import { rotationView, startRotation } from '../services/key-rotation.js';
import type { AuthEnv } from './auth.js';
import { uuidParam } from './input.js';
import type { Ctx, RouteDeps } from './route-deps.js';

/** The key-encryption key: its public half, its rotations, and its export for safekeeping. */
export function keyRoutes(d: RouteDeps) {
  const { db } = d;
  const api = new Hono<AuthEnv>();
  api.get('/keys/kek', async (c) => {
    const k = await d.kek.current();
    return c.json({ kid: k.kid, publicJwk: k.publicJwk });
  });
  api.post('/keys/kek/rotate', async (c) => {
    const p = c.get('principal');
    const id = await startRotation(db, d.box, d.bus, { id: p.tokenId, name: p.name });
    return c.json(await rotationView(db, id), 202);
  });
  api.get('/keys/rotations', async (c) => {
    const rows = await db
      .selectFrom('key_rotations')
      .select('id')
      .orderBy('created_at', 'desc')
      .limit(50)
      .execute();
    return c.json({ items: await Promise.all(rows.map((r) => rotationView(db, r.id))) });
  });
  api.get('/keys/rotations/:id', async (c) =>
    c.json(await rotationView(db, uuidParam(c, 'id', 'key rotation'))),
  );
  api.post('/keys/kek/export', (c) => exportKek(c, d));
  return api;
}

/** For safekeeping: with it and the bucket, `dbbackup-agent decrypt` restores without a control plane. */
async function exportKek(c: Ctx, { db, box, kek }: RouteDeps) {
  // ?kid= exports an older key still held (before a rotation finishes); default the active one.
  const kid = c.req.query('kid') ?? (await kek.current()).kid;
  const known = await db
    .selectFrom('keys')
    .select(['kid', 'private_enc'])
    .where('kid', '=', kid)
    .executeTakeFirst();
  if (!known) throw notFound('key');
  if (!known.private_enc)
    throw conflict(`key ${kid} was retired after a key rotation; its private half is gone`);
  const jwk = await kekPrivateJwk(db, box, kid);
  return c.json({ kid, privateJwk: jwk });
}
