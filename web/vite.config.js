// The web app's build: `npm run build:web` (vite build --config web/vite.config.js).
// Everything lands in web/dist: index.html, and under assets/ files whose names carry
// a hash of their content, which the server lets browsers cache for a year.
import {fileURLToPath} from 'node:url'
import {defineConfig} from 'vite'
import preact from '@preact/preset-vite'

const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // WeChat's in-app browser (X5/XWeb on Android is Chromium-based, iOS is WKWebView):
    // old enough for both, and still with modules, async/await and optional catch binding.
    target: ['es2019', 'chrome80', 'safari13'],
    // Small icons as data: URLs would be fine under the CSP (img-src data:), but files
    // keep index.html and the CSS free of anything that is not a plain reference.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
})
