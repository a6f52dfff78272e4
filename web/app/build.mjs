// Builds the wallet pages with esbuild: one bundle per page (JS and CSS, content-hashed),
// an HTML file per page that loads them, and a gzip -9 copy of each asset, which the server
// sends to browsers that accept gzip. Run through scripts/pages.
//
//   node web/app/build.mjs OUT_DIR        -> OUT_DIR/index.html, OUT_DIR/<page>/index.html,
//                                            OUT_DIR/assets/*; prints one JSON line per page:
//                                            {"page", "js", "jsGzip", "css", "cssGzip"} (bytes)
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
// Each page: its entry in src/pages, its title, and where it is served under /app.
export const PAGES = [
  { name: 'home', title: 'Your wallet', path: '' },
  { name: 'advertiser', title: 'Advertiser', path: 'advertiser' },
  { name: 'hoster', title: 'Hoster', path: 'hoster' },
  { name: 'viewer', title: 'Viewer', path: 'viewer' },
  { name: 'programs', title: 'Programs', path: 'programs' },
];

const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT_DIR');
  process.exit(2);
}
const dist = resolve(out);
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const result = await build({
  absWorkingDir: here,
  entryPoints: Object.fromEntries(PAGES.map((p) => [p.name, `src/pages/${p.name}.ts`])),
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
});

const escape = (s) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const gzip = (file) => {
  const bytes = readFileSync(file);
  const packed = gzipSync(bytes, { level: 9 });
  writeFileSync(`${file}.gz`, packed);
  return [bytes.length, packed.length];
};

for (const page of PAGES) {
  const [js, output] = Object.entries(result.metafile.outputs).find(
    ([, o]) => o.entryPoint === `src/pages/${page.name}.ts`,
  );
  const css = output.cssBundle;
  const asset = (file) => `/app/assets/${basename(file)}`;
  const htmlFile = join(dist, page.path, 'index.html');
  mkdirSync(dirname(htmlFile), { recursive: true });
  writeFileSync(
    htmlFile,
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(page.title)} · adescrow</title>
${css ? `<link rel="stylesheet" href="${asset(css)}">\n` : ''}<script type="module" src="${asset(js)}"></script>
</head>
<body>
<div id="app"><main><h1>${escape(page.title)}</h1><p>Loading…</p></main></div>
<noscript>These pages need JavaScript, and a wallet to sign with.</noscript>
</body>
</html>
`,
  );
  const [jsBytes, jsGzip] = gzip(join(here, js));
  const [cssBytes, cssGzip] = css ? gzip(join(here, css)) : [0, 0];
  console.log(JSON.stringify({ page: page.name, js: jsBytes, jsGzip, css: cssBytes, cssGzip }));
}
