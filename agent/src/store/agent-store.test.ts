import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentStore } from './agent-store.js';

const dir = () => mkdtempSync(path.join(tmpdir(), 'agent-store-'));
const cmd = (commandId: string) => ({
  commandId,
  kind: 'ping',
  payload: {},
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
});
const ID = '7d3f0c1e-8b1a-4d6e-9c2b-1f0e2d3c4b5a';

describe('AgentStore', () => {
  it('opens from several connections at once on a new state directory (the agent starting while status runs)', async () => {
    for (let round = 0; round < 5; round++) {
      const d = dir();
      const stores = await Promise.all([1, 2, 3, 4].map(() => AgentStore.open(d)));
      await stores[0]?.setMeta('k', 'v');
      expect(await stores[3]?.getMeta('k')).toBe('v');
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('records a command id once and reports repeats', async () => {
    const s = await AgentStore.open(dir());
    expect(await s.recordCommand(cmd(ID))).toBe('new');
    expect(await s.recordCommand(cmd(ID))).toBe('repeat');
    expect((await s.inboxCounts()).queued).toBe(1);
    await s.close();
  });

  it('writes the started event in the same transaction as the state change, and only once', async () => {
    const s = await AgentStore.open(dir());
    await s.recordCommand(cmd(ID));
    expect(await s.startCommand(ID)).toBe(true);
    expect(await s.startCommand(ID)).toBe(false);
    const ev = await s.pendingEvents(0, 10);
    expect(ev.map((e) => e.body.type)).toEqual(['command.started']);
    await s.close();
  });

  it('keeps events until acknowledged and never reuses a sequence number', async () => {
    const d = dir();
    let s = await AgentStore.open(d);
    const a = await s.appendEvent({ type: 'log', level: 'info', message: 'a' });
    const b = await s.appendEvent({ type: 'log', level: 'info', message: 'b' });
    expect(b).toBe(a + 1);
    await s.ackEvents(b);
    expect(await s.outboxDepth()).toBe(0);
    await s.close();
    s = await AgentStore.open(d);
    const c = await s.appendEvent({ type: 'log', level: 'info', message: 'c' });
    expect(c).toBe(b + 1);
    expect(await s.eventsAckedUpTo()).toBe(b);
    await s.close();
  });

  it('numbers new events above a high-water mark the control plane already holds', async () => {
    const s = await AgentStore.open(dir());
    await s.ackEvents(41);
    expect(await s.appendEvent({ type: 'log', level: 'info', message: 'x' })).toBe(42);
    await s.close();
  });

  it('fails commands that were running when the agent died, and does not re-queue them', async () => {
    const d = dir();
    let s = await AgentStore.open(d);
    await s.recordCommand(cmd(ID));
    await s.startCommand(ID);
    await s.close();
    s = await AgentStore.open(d);
    expect(await s.failInterrupted()).toEqual([ID]);
    expect(await s.nextQueued()).toBeUndefined();
    const types = (await s.pendingEvents(0, 10)).map((e) => e.body.type);
    expect(types).toEqual(['command.started', 'command.failed']);
    await s.close();
  });
});
