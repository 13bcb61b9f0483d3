import { type ControlPlane, cleanupAll, query } from '@dbbackup/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, rawIdentity } from './support.js';

let cp: ControlPlane;
const enrolled: string[] = [];

beforeAll(async () => {
  cp = await controlPlane();
  for (let i = 0; i < 23; i++) enrolled.push((await rawIdentity(cp)).agentId);
}, 120_000);
afterAll(cleanupAll);

type AgentPage = { items: { id: string }[]; nextCursor: string | null; total: number };

describe('paged lists', () => {
  it('pages through every agent exactly once, in enrolment order, with the total', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/api/v1/agents?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await cp.api<AgentPage>('GET', url);
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(23);
      expect(r.body.items.length).toBeLessThanOrEqual(10);
      seen.push(...r.body.items.map((a) => a.id));
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(enrolled);
  });

  it('keeps its place while agents enrol between pages, and agents enrolled at the same millisecond each appear once', async () => {
    // Rows that share a millisecond are ordered by id: none is skipped or repeated at a page edge.
    await query(cp.databaseUrl, "UPDATE agents SET enrolled_at = date_trunc('second', now())");
    const first = await cp.api<AgentPage>('GET', '/api/v1/agents?limit=7');
    const late = (await rawIdentity(cp)).agentId;
    const seen = first.body.items.map((a) => a.id);
    let cursor = first.body.nextCursor;
    while (cursor) {
      const r = await cp.api<AgentPage>('GET', `/api/v1/agents?limit=7&cursor=${encodeURIComponent(cursor)}`);
      seen.push(...r.body.items.map((a) => a.id));
      cursor = r.body.nextCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual([...enrolled, late].sort());
  });

  it('refuses a bad limit or cursor with problem+json 400', async () => {
    for (const q of [
      'limit=0',
      'limit=1001',
      'limit=ten',
      'cursor=bm90LWEtY3Vyc29y',
      'cursor=%5B%5D',
      'cursor=WyJ4IiwiYSJd',
    ]) {
      const r = await cp.api<{ type: string }>('GET', `/api/v1/agents?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.headers.get('content-type'), q).toMatch(/problem\+json/);
    }
    for (const path of ['/api/v1/targets', '/api/v1/jobs', '/api/v1/backups']) {
      const r = await cp.api('GET', `${path}?cursor=garbage`);
      expect(r.status, path).toBe(400);
    }
  });
});
