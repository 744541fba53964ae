import { defineConfig } from 'vite';

/**
 * The dashboard bundle: `vite build web` (part of `npm run build`) writes web/dist, which the
 * service serves at `/` (src/http/dashboard.routes.ts). `npx vite web` serves the page with hot
 * reload and sends /api and /health to a Zinc running on :8000 (ZINC_URL to change it).
 */
const target = process.env.ZINC_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Browsers new enough for ES2022 all support <link rel="modulepreload">.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 250,
  },
  server: {
    proxy: { '/api': target, '/health': target },
  },
});
