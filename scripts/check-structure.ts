/**
 * `pnpm check:structure`: the shape rules of docs/design.md ("Code structure"), checked from the source.
 *
 * 1. No import circle inside any workspace package (type-only imports count: a circle of types is
 *    still two files that cannot be read apart).
 * 2. Layers: nothing in control-plane/src/services or control-plane/src/gateway imports control-plane/src/http.
 * 3. No source file over 400 lines, except data-like ones (the migrations).
 * 4. No function over 80 lines (the migrations' SQL excepted).
 *
 * It prints every finding and exits 1 if there is one. It reads the files with TypeScript's own parser,
 * so a string that looks like an import is not one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const sourceDirs = [
  'proto/src',
  'agent/src',
  'control-plane/src',
  'packages/cli/src',
  'packages/logger/src',
  'packages/testkit/src',
];
const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 80;
/** Data-like files: long by nature, not by mixing concepts. */
const longFileAllowed = new Set(['control-plane/src/db/migrations.ts']);
/** Layer rules: files under `from` may not import files under `to`. */
const forbidden: Array<{ from: string; to: string }> = [
  { from: 'control-plane/src/services/', to: 'control-plane/src/http/' },
  { from: 'control-plane/src/gateway/', to: 'control-plane/src/http/' },
  { from: 'control-plane/src/db/', to: 'control-plane/src/http/' },
  { from: 'control-plane/src/crypto/', to: 'control-plane/src/http/' },
];

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
}

const files: string[] = [];
for (const dir of sourceDirs) walk(join(root, dir), files);
const rel = (path: string) => relative(root, path);

const findings: string[] = [];
const graph = new Map<string, string[]>();

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec).replace(/\.(js|ts)$/, '');
  for (const candidate of [`${base}.ts`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {}
  }
  return undefined;
}

for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const imports: string[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;

  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const spec = (node.moduleSpecifier as ts.StringLiteral).text;
      const target = resolveImport(file, spec);
      if (target) imports.push(target);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      const target = resolveImport(file, node.arguments[0].text);
      if (target) imports.push(target);
    }
    if (ts.isFunctionLike(node) && 'body' in node && node.body && !longFileAllowed.has(rel(file))) {
      const lines = lineOf(node.end) - lineOf(node.getStart(source)) + 1;
      if (lines > MAX_FUNCTION_LINES) {
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : '(anonymous)';
        findings.push(
          `${rel(file)}:${lineOf(node.getStart(source))}: function ${name} is ${lines} lines (max ${MAX_FUNCTION_LINES})`,
        );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  graph.set(file, imports);

  const lines = text.split('\n').length;
  if (lines > MAX_FILE_LINES && !longFileAllowed.has(rel(file))) {
    findings.push(`${rel(file)}: ${lines} lines (max ${MAX_FILE_LINES})`);
  }
  for (const rule of forbidden) {
    if (!rel(file).startsWith(rule.from)) continue;
    for (const target of imports) {
      if (rel(target).startsWith(rule.to))
        findings.push(`${rel(file)}: imports ${rel(target)} (${rule.from} may not import ${rule.to})`);
    }
  }
}

// Tarjan's strongly connected components: every component of more than one file is a circle.
let index = 0;
const indexOf = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
function strongConnect(v: string): void {
  indexOf.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!indexOf.has(w)) {
      strongConnect(w);
      low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v) ?? 0, indexOf.get(w) ?? 0));
    }
  }
  if (low.get(v) === indexOf.get(v)) {
    const component: string[] = [];
    let w: string | undefined;
    do {
      w = stack.pop();
      if (w === undefined) break;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) findings.push(`import circle: ${component.map(rel).sort().join(' ↔ ')}`);
  }
}
for (const file of graph.keys()) if (!indexOf.has(file)) strongConnect(file);

for (const finding of findings) console.log(finding);
console.log(`check:structure: ${files.length} files, ${findings.length} finding(s)`);
process.exit(findings.length > 0 ? 1 : 0);
