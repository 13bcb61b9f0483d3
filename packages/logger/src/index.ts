import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Field names whose values are never written to a log, wherever they appear
 * (top level or one or two levels down). Secrets that hide inside free text
 * are handled by `redactText`.
 */
export const REDACTED_KEYS = [
  'password',
  'passwd',
  'secret',
  'secretAccessKey',
  'token',
  'adminToken',
  'enrollmentToken',
  'accessToken',
  'refreshToken',
  'authorization',
  'Authorization',
  'cookie',
  'privateKey',
  'dataKey',
  'key',
  'jwt',
  'databaseUrl',
  'DATABASE_URL',
];

const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/** Remove credentials that hide in free text: URLs with passwords, bearer tokens, our own token prefixes. */
export function redactText(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:)[^@\s/]+@/gi, '$1[REDACTED]@')
    .replace(/\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, '$1[REDACTED]')
    .replace(/\bdbb_(adm|api|enr|rft)_[A-Za-z0-9_-]+/g, 'dbb_$1_[REDACTED]')
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[REDACTED-JWT]');
}

export interface CreateLoggerOptions {
  name: string;
  level?: string;
  /** Where to write; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** A JSON logger with secret redaction. Error messages and stacks are scrubbed too. */
export function createLogger({ name, level = 'info', destination }: CreateLoggerOptions): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths, censor: '[REDACTED]' },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error);
        if (s && typeof s.message === 'string') s.message = redactText(s.message);
        if (s && typeof s.stack === 'string') s.stack = redactText(s.stack);
        return s;
      },
    },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as typeof args;
        method.apply(this, scrubbed);
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}
