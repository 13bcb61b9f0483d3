import type { Context } from 'hono';
import type { z } from 'zod';
import { badRequest, notFound, ProblemError, validationProblem } from '../problem.js';

/** Reading a request's input: its JSON body and its path and query ids. Bad input becomes a ProblemError. */

/** Read and validate a JSON body. Malformed JSON is 400; a body of the wrong shape is 422 with every issue listed. */
export async function parseJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const ct = c.req.header('content-type') ?? '';
  if (ct && !/^application\/(.+\+)?json\b/i.test(ct)) {
    throw new ProblemError(415, 'Unsupported Media Type', `expected application/json, got ${ct}`);
  }
  const text = await c.req.text();
  let body: unknown;
  try {
    body = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
  const r = schema.safeParse(body);
  if (!r.success) throw validationProblem(r.error);
  return r.data;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A UUID filter from the query string: undefined when absent; a value that is not a
 * UUID filters to nothing (the nil UUID) rather than erroring, like an unknown id.
 */
export function uuidQuery(c: Context, name: string): string | undefined {
  const v = c.req.query(name);
  if (!v) return undefined;
  return UUID_RE.test(v) ? v.toLowerCase() : '00000000-0000-0000-0000-000000000000';
}

/** A path id that is not a UUID names nothing: 404, without touching the database. */
export function uuidParam(c: Context, name: string, what: string): string {
  const v = c.req.param(name);
  if (!v || !UUID_RE.test(v)) throw notFound(what);
  return v.toLowerCase();
}
