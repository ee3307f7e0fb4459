// The web app's build: Preact (JSX through Vite's own transformer, no plugin), served by the backbone
// under /app (src/web/web.routes.ts). Everything is bundled into files of our own: no CDN, no external
// font, nothing inline, so the strict Content-Security-Policy the backbone sends holds.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/app/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    target: 'es2022',
    modulePreload: { polyfill: false },
  },
});
