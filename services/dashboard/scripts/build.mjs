// Build: the server into dist/server.js (one file, its npm dependencies bundled, so dist/ runs with node
// alone), the page into dist/public (uPlot and its CSS bundled: no CDN). Type checking is `tsc --noEmit`,
// run before this by `npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'public'), { recursive: true });

await build({
  entryPoints: [join(root, 'src/server.ts')],
  outfile: join(dist, 'server.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // ajv is CommonJS and calls require(); give the ESM bundle a require of its own.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

await build({
  entryPoints: [join(root, 'src/page/main.ts')],
  outfile: join(dist, 'public/app.js'),
  bundle: true,
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  format: 'esm',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
copyFileSync(join(root, 'src/page/index.html'), join(dist, 'public/index.html'));
console.log('built dist/server.js and dist/public/{index.html,app.js,app.css}');
