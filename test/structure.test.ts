import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@dbbackup/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStructure, RULES, type StructureRules } from '../scripts/structure.js';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A source tree of the given files (path → text). */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'dbb-structure-'));
  made.push(root);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

const rules: StructureRules = { ...RULES, sourceDirs: ['control-plane/src'] };
const fn = (name: string, lines: number) =>
  `export function ${name}() {\n${'  void 0;\n'.repeat(lines - 2)}}\n`;

describe('check:structure', () => {
  it('finds an import circle, type-only and dynamic imports included', () => {
    const root = tree({
      'control-plane/src/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
      'control-plane/src/b.ts': "export type B = 1;\nexport const c = () => import('./c.js');\n",
      'control-plane/src/c.ts': "export { type A } from './a.js';\n",
      'control-plane/src/d.ts': "import { c } from './b.js';\nexport const d = c;\n",
    });
    const { findings } = checkStructure(root, rules);
    expect(findings).toEqual([
      'import circle: control-plane/src/a.ts ↔ control-plane/src/b.ts ↔ control-plane/src/c.ts',
    ]);
  });

  it('finds a service or the gateway importing the HTTP layer, not the other way round', () => {
    const root = tree({
      'control-plane/src/http/input.ts': "import { s } from '../services/s.js';\nexport const i = s;\n",
      'control-plane/src/services/s.ts': 'export const s = 1;\n',
      'control-plane/src/services/t.ts': "import { i } from '../http/input.js';\nexport const t = i;\n",
      'control-plane/src/gateway/g.ts': "export { i } from '../http/input.js';\n",
      // Text that only looks like an import is not one.
      'control-plane/src/services/quoted.ts': 'export const s = "import { i } from \'../http/input.js\'";\n',
    });
    const { findings } = checkStructure(root, rules);
    expect(findings.sort()).toEqual([
      'control-plane/src/gateway/g.ts: imports control-plane/src/http/input.ts (control-plane/src/gateway/ may not import control-plane/src/http/)',
      'control-plane/src/services/t.ts: imports control-plane/src/http/input.ts (control-plane/src/services/ may not import control-plane/src/http/)',
    ]);
  });

  it('finds a file over 400 lines and a function over 80, except in the migrations', () => {
    const root = tree({
      'control-plane/src/long.ts': `${fn('ok', 80)}${'// filler\n'.repeat(321)}`,
      'control-plane/src/big.ts': fn('big', 81),
      'control-plane/src/db/migrations.ts': `${fn('up', 200)}${'// sql\n'.repeat(300)}`,
    });
    const { findings } = checkStructure(root, rules);
    expect(findings.sort()).toEqual([
      'control-plane/src/big.ts:1: function big is 81 lines (max 80)',
      'control-plane/src/long.ts: 402 lines (max 400)',
    ]);
  });

  it('holds for this repository', () => {
    const { files, findings } = checkStructure(REPO_ROOT);
    expect(files).toBeGreaterThan(100);
    expect(findings).toEqual([]);
  });
});
