import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import {
  type AgentMessage,
  AgentMessages,
  type AgentMessageType,
  type AgentPayload,
  EnvelopeShape,
  type ServerMessage,
  ServerMessages,
  type ServerMessageType,
  type ServerPayload,
} from './messages.js';
import { CloseCode, MAX_FRAME_BYTES, PROTOCOL_MAJOR } from './version.js';

/** Why a frame could not be decoded, as a WebSocket close code and a short reason (<= 123 bytes). */
export type DecodeFailure = { ok: false; code: number; reason: string };
export type DecodeResult<M> = { ok: true; message: M } | DecodeFailure;

type Catalog = Record<string, z.ZodType>;

function fail(code: number, reason: string): DecodeFailure {
  // A close reason must fit in 123 bytes of UTF-8.
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return { ok: false, code, reason: r };
}

function decodeWith<M>(catalog: Catalog, raw: unknown): DecodeResult<M> {
  let text: string;
  if (typeof raw === 'string') text = raw;
  else if (Buffer.isBuffer(raw)) text = raw.toString('utf8');
  else if (Array.isArray(raw)) text = Buffer.concat(raw as Buffer[]).toString('utf8');
  else if (raw instanceof ArrayBuffer) text = Buffer.from(raw).toString('utf8');
  else return fail(CloseCode.invalidPayload, 'unsupported frame');

  if (Buffer.byteLength(text) > MAX_FRAME_BYTES)
    return fail(CloseCode.tooBig, `frame exceeds ${MAX_FRAME_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail(CloseCode.invalidPayload, 'malformed JSON');
  }
  const env = EnvelopeShape.safeParse(json);
  if (!env.success) return fail(CloseCode.protocolError, 'not an envelope {v,type,id,payload}');
  if (env.data.v !== PROTOCOL_MAJOR) {
    return fail(
      CloseCode.unsupportedVersion,
      `unsupported protocol major ${env.data.v}, expected ${PROTOCOL_MAJOR}`,
    );
  }
  const schema = Object.hasOwn(catalog, env.data.type) ? catalog[env.data.type] : undefined;
  if (!schema) return fail(CloseCode.protocolError, `unknown message type ${JSON.stringify(env.data.type)}`);
  const payload = schema.safeParse(env.data.payload);
  if (!payload.success) {
    const issue = payload.error.issues[0];
    const where = issue?.path.join('.') || 'payload';
    return fail(
      CloseCode.protocolError,
      `invalid ${env.data.type}: ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return {
    ok: true,
    message: { v: env.data.v, type: env.data.type, id: env.data.id, payload: payload.data } as M,
  };
}

/** Decode a frame received by the control plane. Never throws. */
export function decodeAgentMessage(raw: unknown): DecodeResult<AgentMessage> {
  return decodeWith<AgentMessage>(AgentMessages, raw);
}

/** Decode a frame received by the agent. Never throws. */
export function decodeServerMessage(raw: unknown): DecodeResult<ServerMessage> {
  return decodeWith<ServerMessage>(ServerMessages, raw);
}

export function encodeAgentMessage<T extends AgentMessageType>(
  type: T,
  payload: AgentPayload<T>,
  id = randomUUID(),
): string {
  return JSON.stringify({ v: PROTOCOL_MAJOR, type, id, payload });
}

export function encodeServerMessage<T extends ServerMessageType>(
  type: T,
  payload: ServerPayload<T>,
  id = randomUUID(),
): string {
  return JSON.stringify({ v: PROTOCOL_MAJOR, type, id, payload });
}
