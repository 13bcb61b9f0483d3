import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.databaseUrl).toBeUndefined();
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ DBBACKUP_PORT: 'eighty' })).toThrow(/DBBACKUP_PORT/);
    expect(() => loadConfig({ DBBACKUP_HEARTBEAT_INTERVAL_MS: '5' })).toThrow(
      /DBBACKUP_HEARTBEAT_INTERVAL_MS/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(ConfigError);
    // The fleet's settings (admission line, reconnect grace, shutdown budget, pool) are checked the same way.
    expect(() => loadConfig({ DBBACKUP_AGENT_ADMISSION_QUEUE: '-1' })).toThrow(
      /DBBACKUP_AGENT_ADMISSION_QUEUE/,
    );
    expect(() => loadConfig({ DBBACKUP_RECONNECT_GRACE_MS: 'soon' })).toThrow(/DBBACKUP_RECONNECT_GRACE_MS/);
    expect(() => loadConfig({ DBBACKUP_SHUTDOWN_TIMEOUT_MS: '10' })).toThrow(/DBBACKUP_SHUTDOWN_TIMEOUT_MS/);
    expect(() => loadConfig({ DBBACKUP_DATABASE_POOL_SIZE: '1' })).toThrow(/DBBACKUP_DATABASE_POOL_SIZE/);
  });

  it('reads a JSON file that the environment overrides', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ DBBACKUP_PORT: 9000, DBBACKUP_HOST: '0.0.0.0' }));
    const c = loadConfig({ DBBACKUP_CONFIG_FILE: file, DBBACKUP_HOST: '127.0.0.1' });
    expect(c.port).toBe(9000);
    expect(c.host).toBe('127.0.0.1');
  });

  it('rejects unknown keys in the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ DBBACKUP_PROT: 9000 }));
    expect(() => loadConfig({ DBBACKUP_CONFIG_FILE: file })).toThrow(/DBBACKUP_PROT/);
  });
});
