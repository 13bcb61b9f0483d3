import { describe, expect, it } from 'vitest';
import { parseBasebackupLog } from '../engines/postgres-physical.js';
import { pgTimestamp, recoveryOutcome, recoverySettings } from './pitr-server.js';

describe('point-in-time restore settings and outcome', () => {
  it('writes recovery settings for a time, an LSN and the end of the archive', () => {
    const base = { walDir: '/srv/r/dbbackup_restore_wal', port: 5499, dataDirectory: '/srv/r' };
    const time = recoverySettings({ ...base, target: { kind: 'time', time: '2026-12-02T08:13:17.339Z' } });
    expect(time).toContain(`restore_command = 'cp "/srv/r/dbbackup_restore_wal/%f" "%p"'`);
    expect(time).toContain("recovery_target_time = '2026-12-02 08:13:17.339+00'");
    expect(time).toContain("recovery_target_action = 'promote'");
    expect(time).toContain('port = 5499');
    expect(time).toContain('archive_mode = off');
    const lsn = recoverySettings({ ...base, target: { kind: 'lsn', lsn: '0/3000060' } });
    expect(lsn).toContain("recovery_target_lsn = '0/3000060'");
    const latest = recoverySettings({ ...base, target: { kind: 'latest' } });
    expect(latest).not.toMatch(/recovery_target_(time|lsn)/);
  });

  it('refuses a time that is not one', () => {
    expect(() => pgTimestamp('yesterday')).toThrow(/not a time/);
  });

  it('reads where recovery stopped from the server log', () => {
    const log = [
      'LOG:  starting point-in-time recovery to 2026-12-02 08:13:17.339+00',
      'LOG:  restored log file "000000010000000000000005" from archive',
      'LOG:  recovery stopping before commit of transaction 1234, time 2026-12-02 08:13:18.5+00',
      'LOG:  redo done at 0/5000A28 system usage: CPU: user: 0.00 s',
      'LOG:  last completed transaction was at log time 2026-12-02 08:13:17.1+00',
      'LOG:  selected new timeline ID: 2',
      'LOG:  database system is ready to accept connections',
    ].join('\n');
    const o = recoveryOutcome(log);
    expect(o).toMatchObject({
      stoppedAt: 'before commit at 2026-12-02 08:13:18.5+00',
      lastTransactionAt: '2026-12-02 08:13:17.1+00',
      newTimeline: 2,
      redoDoneAt: '0/5000A28',
      promoted: true,
      targetNotReached: false,
    });
    const short = recoveryOutcome('FATAL:  recovery ended before configured recovery target was reached\n');
    expect(short.promoted).toBe(false);
    expect(short.targetNotReached).toBe(true);
    expect(short.fatal).toContain('recovery ended before');
  });

  it('reads the WAL span pg_basebackup reports', () => {
    const err =
      'pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\npg_basebackup: write-ahead log end point: 0/2000100\n';
    expect(parseBasebackupLog(err)).toEqual({ startLsn: '0/2000028', stopLsn: '0/2000100', timeline: 1 });
    expect(parseBasebackupLog('nothing')).toEqual({});
  });
});
