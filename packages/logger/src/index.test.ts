import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactText } from './index.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, log: createLogger({ name: 't', destination }) };
}

describe('createLogger', () => {
  it('redacts secret fields at any depth', () => {
    const { lines, log } = capture();
    log.info(
      { password: 'hunter2', s3: { secretAccessKey: 'AKIAXYZSECRET' }, a: { b: { token: 'tok' } } },
      'x',
    );
    const out = lines.join('');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('AKIAXYZSECRET');
    expect(out).not.toContain('"tok"');
    expect(out).toContain('[REDACTED]');
  });

  it('scrubs credentials out of error messages and free text', () => {
    const { lines, log } = capture();
    log.error({ err: new Error('connect postgres://app:s3cr3t@db/x failed') }, 'Bearer dbb_adm_abcdef123');
    const out = lines.join('');
    expect(out).not.toContain('s3cr3t');
    expect(out).not.toContain('abcdef123');
  });
});

describe('redactText', () => {
  it('hides JWTs', () => {
    expect(redactText('token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln')).toBe('token [REDACTED-JWT]');
  });
});
