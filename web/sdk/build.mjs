// Builds the publisher SDK with esbuild. Run through scripts/sdk, which installs esbuild.
//
//   node web/sdk/build.mjs bundle OUT_FILE   src/index.ts -> one minified IIFE (dist/sdk.js)
//   node web/sdk/build.mjs tests OUT_DIR     test/*.test.ts -> OUT_DIR/*.test.mjs for node --test
//
// The bundle is committed (the node embeds it), so its build must be deterministic: fixed
// options, no source map, no timestamps or paths in the output.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [mode, out] = process.argv.slice(2);

if (mode === 'bundle' && out) {
  await build({
    absWorkingDir: here,
    entryPoints: ['src/index.ts'],
    outfile: out,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2019',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    charset: 'ascii',
    banner: { js: '/* adescrow publisher SDK, built from web/sdk */' },
    logLevel: 'warning',
  });
} else if (mode === 'tests' && out) {
  const tests = readdirSync(join(here, 'test'))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join('test', f));
  await build({
    absWorkingDir: here,
    entryPoints: tests,
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
} else {
  console.error('usage: node build.mjs bundle OUT_FILE | tests OUT_DIR');
  process.exit(2);
}
