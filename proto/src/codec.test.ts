import { describe, expect, it } from 'vitest';
import { decodeAgentMessage, decodeServerMessage, encodeAgentMessage, encodeServerMessage } from './codec.js';
import { CloseCode, MAX_FRAME_BYTES, PROTOCOL_MAJOR } from './version.js';

const agentId = '0b7c1f9e-3a52-4a7e-9d38-2f7a4f6a1c11';

describe('decodeAgentMessage', () => {
  it('round-trips a hello', () => {
    const raw = encodeAgentMessage('hello', {
      agentId,
      agentVersion: '0.1.0',
      protocol: { major: PROTOCOL_MAJOR, minor: 0 },
      eventsAckedUpTo: 3,
      recentCommandIds: [],
    });
    const r = decodeAgentMessage(Buffer.from(raw));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.message.type).toBe('hello');
  });

  it('returns invalid-payload for malformed JSON instead of throwing', () => {
    expect(decodeAgentMessage('{nope')).toEqual({
      ok: false,
      code: CloseCode.invalidPayload,
      reason: 'malformed JSON',
    });
  });

  it('names an unknown type', () => {
    const r = decodeAgentMessage(JSON.stringify({ v: 1, type: 'launch', id: 'x', payload: {} }));
    expect(r).toMatchObject({ ok: false, code: CloseCode.protocolError });
    if (!r.ok) expect(r.reason).toContain('launch');
  });

  it('refuses another protocol major', () => {
    const r = decodeAgentMessage(JSON.stringify({ v: 99, type: 'ping', id: 'x', payload: { t: 1 } }));
    expect(r).toMatchObject({ ok: false, code: CloseCode.unsupportedVersion });
  });

  it('refuses an oversized frame', () => {
    const r = decodeAgentMessage('x'.repeat(MAX_FRAME_BYTES + 1));
    expect(r).toMatchObject({ ok: false, code: CloseCode.tooBig });
  });

  it('points at the bad field of a payload', () => {
    const r = decodeAgentMessage(
      JSON.stringify({ v: 1, type: 'command.ack', id: 'x', payload: { commandId: 'nope' } }),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain('commandId');
  });

  it('does not treat inherited object keys as message types', () => {
    const r = decodeAgentMessage(JSON.stringify({ v: 1, type: 'constructor', id: 'x', payload: {} }));
    expect(r).toMatchObject({ ok: false, code: CloseCode.protocolError });
  });

  it('keeps close reasons within 123 bytes', () => {
    const r = decodeAgentMessage(JSON.stringify({ v: 1, type: 'é'.repeat(60), id: 'x', payload: {} }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
  });
});

describe('decodeServerMessage', () => {
  it('accepts a command from the discriminated union and rejects an unknown kind', () => {
    const good = encodeServerMessage('command', {
      commandId: agentId,
      command: { kind: 'ping', echo: 'hi' },
      expiresAt: new Date().toISOString(),
    });
    expect(decodeServerMessage(good).ok).toBe(true);
    const bad = JSON.stringify({
      v: 1,
      type: 'command',
      id: 'x',
      payload: { commandId: agentId, command: { kind: 'rm -rf' }, expiresAt: 'now' },
    });
    expect(decodeServerMessage(bad).ok).toBe(false);
  });
});
