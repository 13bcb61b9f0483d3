import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

/**
 * The one error type of the control plane: services, the gateway and the HTTP layer throw it;
 * the HTTP layer renders it as RFC 7807 application/problem+json (`renderProblem` in http/app.ts),
 * the gateway as the body of a refused upgrade.
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

export const badRequest = (detail: string, extra?: Record<string, unknown>) =>
  new ProblemError(400, 'Bad Request', detail, extra ? { extra } : {});
export const unauthorized = (detail: string, type = 'unauthorized') =>
  new ProblemError(401, 'Unauthorized', detail, { type });
export const forbidden = (detail: string) => new ProblemError(403, 'Forbidden', detail);
export const notFound = (what: string) => new ProblemError(404, 'Not Found', `${what} not found`);
export const conflict = (detail: string, type = 'conflict') =>
  new ProblemError(409, 'Conflict', detail, { type });

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
