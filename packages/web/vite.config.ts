import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Everything bundled, nothing from a CDN; content-hashed files under /assets (cached for a year).
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', assetsDir: 'assets', sourcemap: false, target: 'es2022' },
});
