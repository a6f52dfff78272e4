#!/usr/bin/env node
// Cold loads of every wallet page against a running devnet (scripts/dev), in Debian's
// Chromium with the test wallet signed in: for each page, RUNS loads with the cache off,
// each timed from navigation to the page saying it is interactive (its data loaded and
// rendered), and the gzipped JavaScript it fetched. Prints one line per page with the median.
//
//   node web/app/e2e/bench.mjs [--app http://127.0.0.1:8080/app/] [--rpc http://127.0.0.1:8545]
//                              [--account 0x…] [--runs 7]
//
// The account defaults to anvil's account 3, the demo's advertiser (run `adescrow demo` first
// for a page with campaigns and charts); it takes the hoster role too, so that each page
// shows its own content rather than the offer of a role.

import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const opts = { app: 'http://127.0.0.1:8080/app/', rpc: 'http://127.0.0.1:8545', account: '0x90F79bf6EB2c4f870365E785982E1f101E93b906', runs: '7' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in opts) || argv[i + 1] === undefined) throw new Error(`unknown or incomplete argument ${argv[i]}`);
  opts[key] = argv[i + 1];
}
const runs = Number(opts.runs);
const app = opts.app.replace(/\/?$/, '/');

const driver = spawn(process.execPath, [path.join(path.dirname(fileURLToPath(import.meta.url)), 'browser.mjs')], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const answers = readline.createInterface({ input: driver.stdout })[Symbol.asyncIterator]();
async function cmd(command) {
  driver.stdin.write(JSON.stringify(command) + '\n');
  const { value } = await answers.next();
  const answer = JSON.parse(value);
  if (!answer.ok) throw new Error(`${command.cmd}: ${answer.error}`);
  return answer.value;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  await cmd({ cmd: 'wallet', rpc: opts.rpc, account: opts.account });
  await cmd({ cmd: 'open', url: app });
  await cmd({ cmd: 'click', button: 'Connect adescrow test wallet' });
  await cmd({ cmd: 'click', button: 'Sign in' });
  await cmd({ cmd: 'waitFor', text: 'Signed in as' });
  for (const role of ['advertiser', 'hoster', 'viewer']) {
    const taken = await cmd({ cmd: 'eval', expression: `!![...document.querySelectorAll('a')].find((a) => a.textContent === 'Open the ${role} page')` });
    if (!taken) {
      await cmd({ cmd: 'click', button: `Become ${role === 'advertiser' ? 'an' : 'a'} ${role}` });
      await cmd({ cmd: 'waitFor', text: `You are now a ${role}.` });
    }
  }
  console.log(`cold loads, ${runs} per page (cache off, signed in), median [min, max]:`);
  for (const page of ['', 'advertiser/', 'hoster/', 'viewer/', 'programs/']) {
    const times = [];
    let js = 0;
    for (let i = 0; i < runs; i++) {
      const load = await cmd({ cmd: 'open', url: app + page });
      times.push(load.interactiveMs);
      js = load.scripts.reduce((sum, s) => sum + s.encodedBytes, 0);
    }
    const name = (page.replace('/', '') || 'home').padEnd(11);
    console.log(
      `  ${name} interactive ${median(times).toFixed(0)} ms [${Math.min(...times).toFixed(0)}, ${Math.max(...times).toFixed(0)}]   JavaScript ${js} bytes gzipped`,
    );
  }
} finally {
  driver.stdin.write('{"cmd":"close"}\n');
}
