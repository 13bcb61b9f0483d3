/**
 * The shape rules of docs/design.md ("Code structure"), checked from the source:
 *
 * 1. No import circle among the files checked (type-only imports count: a circle of types is
 *    still two files that cannot be read apart).
 * 2. Layers: nothing in control-plane/src/services, gateway, db or crypto imports control-plane/src/http.
 * 3. No source file over 400 lines, except data-like ones (the migrations).
 * 4. No function over 80 lines (the migrations' SQL excepted).
 *
 * Files are read with TypeScript's own parser, so a string that looks like an import is not one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export interface StructureRules {
  sourceDirs: string[];
  maxFileLines: number;
  maxFunctionLines: number;
  /** Data-like files: long by nature, not by mixing concepts. */
  longFileAllowed: string[];
  /** Files under `from` may not import files under `to`. */
  forbidden: { from: string; to: string }[];
}

export const RULES: StructureRules = {
  sourceDirs: [
    'proto/src',
    'agent/src',
    'control-plane/src',
    'packages/cli/src',
    'packages/logger/src',
    'packages/testkit/src',
  ],
  maxFileLines: 400,
  maxFunctionLines: 80,
  longFileAllowed: ['control-plane/src/db/migrations.ts'],
  forbidden: ['services', 'gateway', 'db', 'crypto'].map((layer) => ({
    from: `control-plane/src/${layer}/`,
    to: 'control-plane/src/http/',
  })),
};

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
}

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

/** One file's relative imports (static, re-exports and dynamic) and its over-long functions. */
function readFile(file: string, maxFunctionLines: number) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const imports: string[] = [];
  const longFunctions: { line: number; name: string; lines: number }[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    let spec: string | undefined;
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      spec = (node.moduleSpecifier as ts.StringLiteral).text;
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    )
      spec = node.arguments[0].text;
    const target = spec ? resolveImport(file, spec) : undefined;
    if (target) imports.push(target);
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = lineOf(node.getStart(source));
      const lines = lineOf(node.end) - start + 1;
      const name = node.name && ts.isIdentifier(node.name) ? node.name.text : '(anonymous)';
      if (lines > maxFunctionLines) longFunctions.push({ line: start, name, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { imports, longFunctions, lines: source.getLineAndCharacterOfPosition(source.end).line + 1 };
}

/** Tarjan's strongly connected components: every component of more than one file is a circle. */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indexOf.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, indexOf.get(w) ?? 0));
    }
    if (low.get(v) !== indexOf.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w);
      component.push(w);
    }
    if (component.length > 1) found.push(component);
  };
  for (const file of graph.keys()) if (!indexOf.has(file)) connect(file);
  return found;
}

/** Every breach of the rules under `root`, one line each (none: the structure holds). */
export function checkStructure(
  root: string,
  rules: StructureRules = RULES,
): { files: number; findings: string[] } {
  const files: string[] = [];
  for (const dir of rules.sourceDirs) walk(join(root, dir), files);
  const rel = (path: string) => relative(root, path);
  const findings: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const allowedLong = rules.longFileAllowed.includes(rel(file));
    const { imports, longFunctions, lines } = readFile(file, rules.maxFunctionLines);
    graph.set(file, imports);
    if (!allowedLong) {
      for (const f of longFunctions)
        findings.push(
          `${rel(file)}:${f.line}: function ${f.name} is ${f.lines} lines (max ${rules.maxFunctionLines})`,
        );
      if (lines > rules.maxFileLines)
        findings.push(`${rel(file)}: ${lines} lines (max ${rules.maxFileLines})`);
    }
    for (const rule of rules.forbidden) {
      if (!rel(file).startsWith(rule.from)) continue;
      for (const target of imports)
        if (rel(target).startsWith(rule.to))
          findings.push(`${rel(file)}: imports ${rel(target)} (${rule.from} may not import ${rule.to})`);
    }
  }
  for (const c of circles(graph)) findings.push(`import circle: ${c.map(rel).sort().join(' ↔ ')}`);
  return { files: files.length, findings };
}
