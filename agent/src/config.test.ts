import { describe, expect, it } from 'vitest';
import { loadAgentConfig, UsageError } from './config.js';

describe('the agent configuration, parsed once', () => {
  it('takes defaults, flags over the environment, and every list setting', () => {
    const c = loadAgentConfig(
      { 'state-dir': '/srv/agent', label: ['team=db'] },
      {
        DBBACKUP_STATE_DIR: '/ignored',
        DBBACKUP_LABELS: 'env=prod',
        DBBACKUP_BACKOFF_BASE_MS: '250',
        DBBACKUP_TOOL_DIRS: '/opt/pg/bin:relative:/usr/bin',
        DBBACKUP_ALLOWED_COMMANDS: 'systemctl start redis\n\n  redis-server /etc/redis.conf  \n',
        DBBACKUP_S3_RETRY_BASE_MS: '50',
        DBBACKUP_DISCOVER_REDIS: '127.0.0.1:6380,bad,10.0.0.1:99999',
      },
    );
    expect(c.stateDir).toBe('/srv/agent');
    expect(c.labels).toEqual({ team: 'db', env: 'prod' });
    expect(c.backoffBaseMs).toBe(250);
    expect(c.backoffCapMs).toBe(60_000);
    expect(c.secretsFile).toBe('/etc/dbbackup/secrets.json');
    expect(c.toolDirs).toEqual(['/opt/pg/bin', '/usr/bin']);
    expect(c.allowedCommands).toEqual(['systemctl start redis', 'redis-server /etc/redis.conf']);
    expect(c.s3RetryBaseMs).toBe(50);
    expect(c.discovery?.redis).toEqual([{ host: '127.0.0.1', port: 6380 }]);
    expect(c.testCrashPoint).toBeUndefined();
  });

  it('turns discovery off and leaves a bad S3 retry base to the store', () => {
    const c = loadAgentConfig({}, { DBBACKUP_DISCOVERY: 'off', DBBACKUP_S3_RETRY_BASE_MS: '-5' });
    expect(c.discovery).toBeUndefined();
    expect(c.s3RetryBaseMs).toBeUndefined();
  });

  it.each([
    [
      { DBBACKUP_BACKOFF_BASE_MS: 'soon' },
      /--backoff-base-ms \/ DBBACKUP_BACKOFF_BASE_MS: expected an integer/,
    ],
    [{ DBBACKUP_ORPHAN_GRACE_MS: '-1' }, /DBBACKUP_ORPHAN_GRACE_MS/],
    [
      { DBBACKUP_WAL_SPOOL_MAX_BYTES: '1000' },
      /--wal-spool-max-bytes \/ DBBACKUP_WAL_SPOOL_MAX_BYTES: expected an integer from 67108864/,
    ],
    [{ DBBACKUP_LABELS: 'novalue' }, /--label \/ DBBACKUP_LABELS: expected key=value/],
  ])('refuses %o naming the variable', (env, message) => {
    expect(() => loadAgentConfig({}, env)).toThrow(UsageError);
    expect(() => loadAgentConfig({}, env)).toThrow(message);
  });
});
