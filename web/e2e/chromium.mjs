// Debian's Chromium, headless, for the browser tests of web/sdk and web/app: started in a
// temporary directory of its own (profile and TMPDIR), reached over raw CDP
// (chrome-remote-interface), and always killed with its helpers and that directory removed.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import CDP from 'chrome-remote-interface';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Evaluates `expression` in the page (awaiting a promise) and returns its value. */
export async function evaluate(client, expression, ms = 10000) {
  const r = await withTimeout(
    client.Runtime.evaluate({ expression, returnByValue: true, awaitPromise: true }),
    ms,
    `Runtime.evaluate ${expression.slice(0, 60)}`,
  );
  if (r.exceptionDetails) {
    const d = r.exceptionDetails;
    throw new Error(`page threw on ${JSON.stringify(expression.slice(0, 60))}: ${(d.exception && d.exception.description) || d.text}`);
  }
  return r.result.value;
}

/**
 * Starts Chromium and connects to its browser endpoint. Returns
 * `{browser, port, newTab, closeTab, stderrTail, close}`; `close()` is idempotent.
 */
export async function launchChromium(bin = '/usr/bin/chromium', { windowSize = '1280,800' } = {}) {
  // One temporary directory for everything: the profile, and chromium's TMPDIR (where it
  // would otherwise leave org.chromium.Chromium.* behind).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adescrow-e2e-chromium-'));
  const profile = path.join(dir, 'profile');
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(profile);
  fs.mkdirSync(tmp);
  const args = [
    '--headless',
    '--no-sandbox',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-background-networking',
    '--disable-gpu',
    `--window-size=${windowSize}`,
    // Host names under .test (reserved, RFC 2606) reach this machine: a page can be opened
    // as a reseller's custom domain.
    '--host-resolver-rules=MAP *.test 127.0.0.1',
    'about:blank',
  ];
  const stderrTail = [];
  // Own process group, so that cleanup can kill chromium's helpers too.
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, TMPDIR: tmp } });
  let done = false;
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  exited.then(() => (done = true));
  // However this process ends (short of SIGKILL), Chromium and its helpers end with it.
  process.once('exit', () => {
    if (!done) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch (_) {}
    }
  });
  const clients = new Set();
  let browser = null;

  let closing = null;
  const close = () => {
    if (closing) return closing;
    closing = (async () => {
      for (const c of clients) {
        try {
          c.close();
        } catch (_) {}
      }
      if (!done && browser) {
        try {
          await withTimeout(browser.Browser.close(), 2000, 'Browser.close');
        } catch (_) {}
        await Promise.race([exited, sleep(3000)]);
      }
      if (!done) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch (_) {}
        await Promise.race([exited, sleep(3000)]);
      }
      // Helpers may still be writing to the profile for a moment after the browser died.
      for (let i = 0; i < 10; i++) {
        try {
          fs.rmSync(dir, { recursive: true, force: true });
          break;
        } catch (_) {
          await sleep(200);
        }
      }
    })();
    return closing;
  };

  const ws = await withTimeout(
    new Promise((resolve, reject) => {
      let buf = '';
      let found = false;
      proc.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
      exited.then(({ code, sig }) => {
        if (!found) reject(new Error(`chromium exited (${sig || code}) before DevTools was up:\n${stderrTail.join('\n')}`));
      });
      proc.stderr.setEncoding('utf8');
      // Keep draining stderr all along (a full pipe would block chromium).
      proc.stderr.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!/dbus/i.test(line)) stderrTail.push(line); // D-Bus complaints are noise here
          if (stderrTail.length > 30) stderrTail.shift();
          const m = /DevTools listening on (ws:\/\/\S+)/.exec(line);
          if (m && !found) {
            found = true;
            resolve(m[1]);
          }
        }
      });
    }),
    15000,
    'chromium to start',
  ).catch(async (e) => {
    await close();
    throw e;
  });
  const port = Number(new URL(ws).port);
  browser = await CDP({ target: ws, local: true });
  clients.add(browser);

  /** A new tab on about:blank with a CDP client attached (Page and Runtime enabled). */
  const newTab = async () => {
    const { targetId } = await browser.Target.createTarget({ url: 'about:blank' });
    const client = await CDP({ host: '127.0.0.1', port, target: `ws://127.0.0.1:${port}/devtools/page/${targetId}`, local: true });
    clients.add(client);
    const disconnected = new Promise((r) => client.once('disconnect', r));
    await client.Page.enable();
    await client.Runtime.enable();
    return { targetId, client, disconnected };
  };

  const closeTab = async (tab) => {
    await browser.Target.closeTarget({ targetId: tab.targetId });
    await Promise.race([tab.disconnected, sleep(5000)]);
    clients.delete(tab.client);
  };

  return { browser, port, newTab, closeTab, stderrTail, close };
}
