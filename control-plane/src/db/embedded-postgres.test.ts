import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closedToOthers } from './embedded-postgres.js';

describe('closedToOthers (can the postgres user reach the embedded server and its data?)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'dbb-traverse-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names the first directory others cannot enter, and nothing when all are open', async () => {
    const open = path.join(root, 'open', 'data');
    mkdirSync(open, { recursive: true });
    chmodSync(root, 0o755);
    chmodSync(path.join(root, 'open'), 0o711);
    expect(await closedToOthers(open)).toBeUndefined();
    expect(await closedToOthers(path.join(open, 'not-yet', 'postgres'))).toBeUndefined();
    const closed = path.join(root, 'closed');
    mkdirSync(path.join(closed, 'data'), { recursive: true });
    chmodSync(closed, 0o700);
    expect(await closedToOthers(path.join(closed, 'data'))).toBe(closed);
    chmodSync(root, 0o700); // as mktemp -d makes it
    expect(await closedToOthers(open)).toBe(root);
  });
});
