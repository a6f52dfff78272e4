#!/usr/bin/env node
// A browser for the Rust tests of the wallet pages (tests/it/pages): Debian's Chromium over
// raw CDP, one tab, with the test wallet (e2e/wallet.js) injected before every page loads.
// The test drives it with one JSON command per line on stdin; each gets one JSON line on
// stdout, `{"ok": true, "value": ...}` or `{"ok": false, "error": "..."}`.
//
//   node web/app/e2e/browser.mjs [--chromium /usr/bin/chromium]
//
// Commands (`cmd` and its members):
//   wallet {rpc, account, chainId?}  the wallet's anvil, its one account, and the chain it
//                                    says it is on at first (default: anvil's); a switch to
//                                    anvil's chain is granted, any other is 4902
//   reject {method}                  the next request of `method` is refused as a user
//                                    refuses: EIP-1193 error 4001
//   calls                            every wallet request so far: [{method, rejected}]
//   open {url}                       a cold load: cache off, navigate, wait until the page
//                                    says it is interactive; -> {interactiveMs, scripts:
//                                    [{url, encodedBytes, decodedBytes}]}
//   click {selector} | {button}      clicks an element; `button`: the button or link whose
//                                    text is exactly this (visible, enabled)
//   fill {label, value}              types into the control labelled exactly `label` (the
//                                    label's own text, without its controls' and hints')
//   select {label, value}            chooses an option by value in the labelled <select>
//   waitFor {text, selector?, timeoutMs?}  until an element (default body) contains `text`
//   text {selector}                  textContent of the first match
//   eval {expression}                the expression's value (promises awaited)
//   viewport {width, height, mobile} emulates a screen size
//   screenshot {path}                a PNG of the whole page
//   close                            ends the browser; the driver exits
// Everything is bounded; on any error the browser is still closed when stdin ends.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { evaluate, launchChromium, sleep, withTimeout } from '../../e2e/chromium.mjs';

const WALLET_JS = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'wallet.js'), 'utf8');
const LOAD_TIMEOUT_MS = 20000;
const WAIT_TIMEOUT_MS = 30000;
const log = (msg) => process.stderr.write(`browser.mjs: ${msg}\n`);

const args = process.argv.slice(2);
const chromiumBin = args[0] === '--chromium' && args[1] ? args[1] : '/usr/bin/chromium';

const chrome = await launchChromium(chromiumBin);
const tab = await chrome.newTab();
const { client } = tab;
await client.Network.enable();

// ---- the wallet -------------------------------------------------------------------------

const wallet = { rpc: null, account: null, anvilChain: null, chain: null, connected: false, reject: new Set(), calls: [] };
const SIGNING = new Set(['personal_sign', 'eth_signTypedData_v4', 'eth_sendTransaction']);
const hex = (n) => '0x' + n.toString(16);

async function anvil(method, params) {
  const res = await fetch(wallet.rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
  return body.result;
}

async function answer(method, params) {
  if (wallet.reject.delete(method)) throw Object.assign(new Error('User rejected the request.'), { code: 4001, rejected: true });
  switch (method) {
    case 'eth_requestAccounts':
      wallet.connected = true;
      return [wallet.account];
    case 'eth_accounts':
      return wallet.connected ? [wallet.account] : [];
    case 'eth_chainId':
      return hex(wallet.chain);
    case 'net_version':
      return String(wallet.chain);
    case 'wallet_switchEthereumChain': {
      const wanted = Number(BigInt(params[0].chainId));
      if (wanted !== wallet.anvilChain) throw Object.assign(new Error(`Unrecognized chain ID ${params[0].chainId}.`), { code: 4902 });
      if (wallet.chain !== wanted) {
        wallet.chain = wanted;
        await emit('chainChanged', hex(wanted));
      }
      return null;
    }
    default:
      if (SIGNING.has(method) && wallet.chain !== wallet.anvilChain) {
        throw Object.assign(new Error('The wallet is on another chain.'), { code: 4901 });
      }
      if (SIGNING.has(method) && !wallet.connected) throw Object.assign(new Error('Not connected.'), { code: 4100 });
      return anvil(method, params);
  }
}

async function emit(event, data) {
  await client.Runtime.evaluate({ expression: `window.__adescrowWalletEmit(${JSON.stringify(event)}, ${JSON.stringify(data)})` });
}

client.Runtime.bindingCalled(async ({ name, payload }) => {
  if (name !== '__adescrowWallet') return;
  const { id, method, params } = JSON.parse(payload);
  let result = null;
  let error = null;
  try {
    result = await answer(method, params);
    wallet.calls.push({ method, rejected: false });
  } catch (e) {
    error = { code: e.code ?? -32603, message: e.message, data: e.data };
    wallet.calls.push({ method, rejected: e.code === 4001 });
  }
  try {
    await client.Runtime.evaluate({
      expression: `window.__adescrowWalletReply(${id}, ${JSON.stringify(result ?? null)}, ${JSON.stringify(error)})`,
    });
  } catch (e) {
    log(`cannot answer ${method}: ${e.message}`);
  }
});
await client.Runtime.addBinding({ name: '__adescrowWallet' });
await client.Page.addScriptToEvaluateOnNewDocument({ source: WALLET_JS });
// What the page's CSP refused, for the test to check that there was nothing.
await client.Page.addScriptToEvaluateOnNewDocument({
  source: `window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`,
});

// ---- the page ---------------------------------------------------------------------------

async function open({ url }) {
  await client.Network.setCacheDisabled({ cacheDisabled: true });
  const loaded = new Promise((r) => client.once('Page.loadEventFired', r));
  const r = await client.Page.navigate({ url });
  if (r.errorText) throw new Error(`navigation to ${url} failed: ${r.errorText}`);
  await withTimeout(loaded, LOAD_TIMEOUT_MS, `load event of ${url}`);
  const until = Date.now() + LOAD_TIMEOUT_MS;
  for (;;) {
    const state = await evaluate(
      client,
      `({ms: window.__adescrowInteractive ?? null, error: document.querySelector('[role=alert]')?.textContent ?? null})`,
    );
    if (state.ms !== null) {
      const scripts = await evaluate(
        client,
        `performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js'))
          .map((e) => ({url: e.name, encodedBytes: e.encodedBodySize, decodedBytes: e.decodedBodySize}))`,
      );
      return { interactiveMs: state.ms, scripts };
    }
    if (Date.now() > until) throw new Error(`${url} never became interactive (alert: ${state.error})`);
    await sleep(25);
  }
}

/** A JS expression for the element named by `selector`, or by its button/link text. */
function target({ selector, button }) {
  if (selector) return `document.querySelector(${JSON.stringify(selector)})`;
  if (button) {
    return `[...document.querySelectorAll('button, a, [role=button]')].find((e) =>
      e.textContent.trim() === ${JSON.stringify(button)} && e.offsetParent !== null)`;
  }
  throw new Error('click needs a selector or a button');
}

/**
 * The control of the label whose own text is exactly `label`: the label's text without that
 * of the controls and hints inside it (a <select>'s options are text too).
 */
function labelled(label) {
  return `(() => {
    const own = (l) => [...l.childNodes]
      .filter((n) => !(n instanceof Element && n.matches('select, input, textarea, .hint')))
      .map((n) => n.textContent).join('').trim();
    const l = [...document.querySelectorAll('label')].find((l) => own(l) === ${JSON.stringify(label)});
    return l && l.control;
  })()`;
}

async function waitUntil(expression, what, timeoutMs = WAIT_TIMEOUT_MS) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await evaluate(client, expression);
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > until) {
      const alert = await evaluate(client, `[...document.querySelectorAll('[role=alert]')].map((e) => e.textContent).join(' | ')`);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; alerts on the page: ${alert || 'none'}`);
    }
    await sleep(50);
  }
}

const commands = {
  wallet: async ({ rpc, account, chainId }) => {
    wallet.rpc = rpc;
    wallet.account = account;
    wallet.anvilChain = Number(BigInt(await anvil('eth_chainId', [])));
    wallet.chain = chainId ?? wallet.anvilChain;
    wallet.connected = false;
    return null;
  },
  reject: async ({ method }) => {
    wallet.reject.add(method);
    return null;
  },
  calls: async () => wallet.calls,
  open,
  click: async (what) => {
    const el = target(what);
    const name = JSON.stringify(what.selector ?? what.button);
    await waitUntil(`(() => { const e = ${el}; return !!e && !e.disabled; })()`, `${name} to be there and enabled`);
    await evaluate(client, `(() => { const e = ${el}; e.focus(); e.click(); return true; })()`);
    return null;
  },
  fill: async ({ label, value }) => {
    await waitUntil(`!!${labelled(label)}`, `a control labelled ${JSON.stringify(label)}`);
    await evaluate(
      client,
      `(() => { const c = ${labelled(label)}; c.focus(); c.value = ${JSON.stringify(value)};
        c.dispatchEvent(new Event('input', {bubbles: true})); c.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`,
    );
    return null;
  },
  select: async ({ label, value }) => {
    await waitUntil(
      `(() => { const c = ${labelled(label)}; return !!c && [...c.options].some((o) => o.value === ${JSON.stringify(value)}); })()`,
      `option ${JSON.stringify(value)} of ${JSON.stringify(label)}`,
    );
    await evaluate(
      client,
      `(() => { const c = ${labelled(label)}; c.value = ${JSON.stringify(value)};
        c.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`,
    );
    return null;
  },
  waitFor: async ({ text, selector, timeoutMs }) =>
    waitUntil(
      `(() => { const e = [...document.querySelectorAll(${JSON.stringify(selector ?? 'body')})]
          .find((e) => e.textContent.includes(${JSON.stringify(text)})); return e ? e.textContent : null; })()`,
      `${JSON.stringify(text)} in ${selector ?? 'the page'}`,
      timeoutMs,
    ),
  text: async ({ selector }) =>
    waitUntil(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? null`, JSON.stringify(selector)),
  eval: async ({ expression }) => evaluate(client, expression),
  viewport: async ({ width, height, mobile }) => {
    await client.Emulation.setDeviceMetricsOverride({ width, height, deviceScaleFactor: 1, mobile: !!mobile });
    return null;
  },
  screenshot: async ({ path: file }) => {
    const { cssContentSize } = await client.Page.getLayoutMetrics();
    const { data } = await client.Page.captureScreenshot({
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: cssContentSize.width, height: cssContentSize.height, scale: 1 },
    });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from(data, 'base64'));
    return file;
  },
};

// ---- the protocol -----------------------------------------------------------------------

const reply = (obj) => new Promise((r) => process.stdout.write(JSON.stringify(obj) + '\n', r));
let closed = false;
const shutdown = async (code) => {
  if (closed) return;
  closed = true;
  await chrome.close();
  process.exit(code);
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => shutdown(1));

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    await reply({ ok: false, error: `not JSON: ${e.message}` });
    continue;
  }
  if (command.cmd === 'close') break;
  const run = commands[command.cmd];
  if (!run) {
    await reply({ ok: false, error: `no command ${JSON.stringify(command.cmd)}` });
    continue;
  }
  try {
    const value = await withTimeout(run(command), 60000, command.cmd);
    await reply({ ok: true, value: value ?? null });
  } catch (e) {
    await reply({ ok: false, error: e.message });
  }
}
await reply({ ok: true, value: null });
await shutdown(0);
