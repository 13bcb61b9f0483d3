// Bundle the agent into dist/ with esbuild: one process image without a TypeScript
// loader (measured: 84 MB RSS instead of 151 MB under tsx). The AWS SDK stays
// external and is loaded only by agents that use S3; better-sqlite3 is native.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });

await build({
  entryPoints: { 'dbbackup-agent': 'src/main.ts' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: 'dist',
  sourcemap: 'linked',
  minify: true,
  keepNames: true,
  external: ['better-sqlite3', 'pg-native', '@aws-sdk/*', '@smithy/*'],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});
