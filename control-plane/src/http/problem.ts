import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

/**
 * The one error type of the control plane's HTTP surface, rendered as RFC 7807
 * application/problem+json by `renderProblem`.
 */
export class ProblemError extends Error {
  readonly status: ContentfulStatusCode;
  readonly type: string;
  readonly title: string;
  readonly extra: Record<string, unknown>;

  constructor(
    status: ContentfulStatusCode,
    title: string,
    detail: string,
    { type, extra = {}, cause }: { type?: string; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, { cause });
    this.name = 'ProblemError';
    this.status = status;
    this.title = title;
    this.type = type ?? slug(title);
    this.extra = extra;
  }
}

function slug(s: string) {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

export const problemBody = (p: ProblemError, instance?: string) => ({
  type: `https://dbbackup.dev/problems/${p.type}`,
  title: p.title,
  status: p.status,
  detail: p.message,
  ...(instance ? { instance } : {}),
  ...p.extra,
});

export function renderProblem(c: Context, p: ProblemError): Response {
  return c.body(JSON.stringify(problemBody(p, c.req.path)), p.status, {
    'content-type': 'application/problem+json',
    // The unread rest of an oversized body must not be parsed as the next request.
    ...(p.status === 413 ? { connection: 'close' } : {}),
  });
}

export const badRequest = (detail: string, extra?: Record<string, unknown>) =>
  new ProblemError(400, 'Bad Request', detail, extra ? { extra } : {});
export const unauthorized = (detail: string, type = 'unauthorized') =>
  new ProblemError(401, 'Unauthorized', detail, { type });
export const forbidden = (detail: string) => new ProblemError(403, 'Forbidden', detail);
export const notFound = (what: string) => new ProblemError(404, 'Not Found', `${what} not found`);
export const conflict = (detail: string, type = 'conflict') =>
  new ProblemError(409, 'Conflict', detail, { type });

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

/** A body of the wrong shape: 422 listing every issue by field. */
export function validationProblem(error: z.ZodError): ProblemError {
  const errors = error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
  return new ProblemError(
    422,
    'Unprocessable Content',
    errors.map((e) => `${e.path}: ${e.message}`).join('; '),
    {
      type: 'validation',
      extra: { errors },
    },
  );
}

/** A query string of the wrong shape: 400 naming each parameter. */
export function invalidQuery(error: z.ZodError): ProblemError {
  const errors = error.issues.map((i) => ({ path: i.path.join('.') || '(query)', message: i.message }));
  return new ProblemError(400, 'Bad Request', errors.map((e) => `${e.path}: ${e.message}`).join('; '), {
    type: 'invalid-query',
    extra: { errors },
  });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A path id that is not a UUID names nothing: 404, without touching the database. */
/**
 * A UUID filter from the query string: undefined when absent; a value that is not a
 * UUID filters to nothing (the nil UUID) rather than erroring, like an unknown id.
 */
export function uuidQuery(c: Context, name: string): string | undefined {
  const v = c.req.query(name);
  if (!v) return undefined;
  return UUID_RE.test(v) ? v.toLowerCase() : '00000000-0000-0000-0000-000000000000';
}

export function uuidParam(c: Context, name: string, what: string): string {
  const v = c.req.param(name);
  if (!v || !UUID_RE.test(v)) throw notFound(what);
  return v.toLowerCase();
}
