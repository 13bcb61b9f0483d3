/** `pnpm check:structure` (run by CI): prints every breach of the structure rules (scripts/structure.ts); exit 1 if any. */
import { dirname, resolve } from 'node:path';
import { checkStructure } from './structure.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const { files, findings } = checkStructure(root);
for (const finding of findings) console.log(finding);
console.log(`check:structure: ${files} files, ${findings.length} finding(s)`);
process.exit(findings.length > 0 ? 1 : 0);
