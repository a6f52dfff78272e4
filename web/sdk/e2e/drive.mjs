#!/usr/bin/env node
// Drives Debian's Chromium over raw CDP (chrome-remote-interface, no Playwright) through
// the publisher SDK's browser scenario, for the Rust integration test. Playwright cannot
// do this: it makes every page report `visible` and focused, so a background tab cannot be
// simulated with it.
//
//   node web/sdk/e2e/drive.mjs --page <URL_A> --page-missing <URL_B> \
//        --witness-origin http://127.0.0.1:PORT [--chromium /usr/bin/chromium] [--screenshots DIR]
//
// URL_A and URL_B are e2e/page.html URLs (with ?node=…&witness=…). Scenario:
//
//   Tab A (URL_A), brought to front (visible and focused), once the three slots rendered:
//     1. #slot-1 in view (centered) for LONG_DWELL_MS, and on until its view event (at most
//        LONG_DWELL_MAX_MS)                                             -> a view
//     2. #slot-2 in view for SHORT_DWELL_MS, then back to the very top  -> no view
//     3. #slot-3 in view, and at once a blank tab is opened and activated: Tab A is hidden
//        (checked). HIDDEN_MS later Tab A is closed while hidden (its pagehide flushes
//        queued beacons), then the blank tab.                           -> no view
//     "In view" means: the page's IntersectionObserver reported the slot >= 50% in view.
//   Tab B (URL_B): every request to --witness-origin is failed (CDP Fetch, ConnectionRefused)
//     from before its navigation until AFTER_CLOSE_MS after it is closed, so that the
//     sendBeacon of its pagehide is failed too. Once the slots rendered, #slot-1 is in view
//     as in step 1 (a view the witness never hears of), then the tab is closed.
//   After each tab is closed, AFTER_CLOSE_MS for its last beacons to leave.
//
// Prints one JSON object on stdout:
//   {"a": {"slots": {"slot-1": ticketId, …}, "views": ["slot-1", …], "events": [...]}, "b": {…}}
// `slots`: each slot element id -> the ticketId of its slotRenderEnded; `views`: slot ids
// with an `impressionViewable` among the page's own events (window.__adescrowEvents, which
// `events` is), read right before the tab is closed. With --screenshots DIR, DIR/tab-a.png
// and DIR/tab-b.png are the viewports just before each tab is closed. Exit 0 on success;
// otherwise non-zero with the reason on stderr (everything is bounded: OVERALL_TIMEOUT_MS).
// Chromium is always killed and its temporary directory (profile, TMPDIR) removed.

import fs from 'node:fs';
import path from 'node:path';
import { evaluate, launchChromium, sleep, withTimeout } from '../../e2e/chromium.mjs';

const LONG_DWELL_MS = 1600; // a view needs 50% in view for 1 continuous second
const LONG_DWELL_MAX_MS = 4000; // past LONG_DWELL_MS, keep the slot in view until its view event, at most this long
const SHORT_DWELL_MS = 500; // well under a second: no view
const HIDDEN_MS = 2000; // Tab A stays hidden (slot-3 in view) this long before it is closed
const AFTER_CLOSE_MS = 300; // lets the beacons of a closed tab leave
const RENDER_TIMEOUT_MS = 20000;
const OVERALL_TIMEOUT_MS = 60000;

// ---- arguments ----------------------------------------------------------------------------

function parseArgs(argv) {
  const known = new Set(['--page', '--page-missing', '--witness-origin', '--chromium', '--screenshots']);
  const out = { chromium: '/usr/bin/chromium', screenshots: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!known.has(k)) throw new Error(`unknown argument ${JSON.stringify(k)}`);
    const v = argv[++i];
    if (v === undefined || v.startsWith('--')) throw new Error(`${k} needs a value`);
    out[k.slice(2).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
  }
  for (const k of ['page', 'pageMissing', 'witnessOrigin']) {
    if (!out[k]) throw new Error(`missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  }
  const w = new URL(out.witnessOrigin);
  if (w.origin === 'null' || w.origin !== out.witnessOrigin.replace(/\/+$/, '')) {
    throw new Error(`--witness-origin must be an origin like http://127.0.0.1:PORT, got ${out.witnessOrigin}`);
  }
  out.witnessOrigin = w.origin;
  return out;
}

// ---- helpers ----------------------------------------------------------------------------------

const log = (msg) => process.stderr.write(`drive.mjs: ${msg}\n`);

const readEvents = (client) => evaluate(client, 'JSON.stringify(window.__adescrowEvents || [])').then((s) => JSON.parse(s));

async function pageState(client) {
  return evaluate(client, '({visibility: document.visibilityState, focus: document.hasFocus()})');
}

// ---- tabs -------------------------------------------------------------------------------------

let chrome = null; // launchChromium's handle: {browser, newTab, closeTab, stderrTail, close}

/** Brings the tab to front and waits until its document is visible and has focus. */
async function toFront(tab, what) {
  await tab.client.Page.bringToFront();
  const until = Date.now() + 5000;
  let st;
  while (Date.now() < until) {
    st = await pageState(tab.client);
    if (st.visibility === 'visible' && st.focus) return;
    await sleep(50);
  }
  throw new Error(`${what} is not visible and focused after Page.bringToFront: ${JSON.stringify(st)}`);
}

async function navigate(tab, url, what) {
  const loaded = new Promise((r) => tab.client.once('Page.loadEventFired', r));
  const r = await tab.client.Page.navigate({ url });
  if (r.errorText) throw new Error(`${what}: navigation to ${url} failed: ${r.errorText}`);
  await withTimeout(loaded, RENDER_TIMEOUT_MS, `${what}: load event of ${url}`);
}

/** Waits for adescrow.ready and three non-empty slotRenderEnded; returns {slot id: ticketId}. */
async function waitRendered(tab, what) {
  const until = Date.now() + RENDER_TIMEOUT_MS;
  let state = { ready: false, events: [] };
  while (Date.now() < until) {
    state = JSON.parse(
      await evaluate(tab.client, 'JSON.stringify({ready: window.__adescrowReady === true, events: window.__adescrowEvents || []})'),
    );
    const ended = state.events.filter((e) => e.type === 'slotRenderEnded');
    const empty = ended.filter((e) => e.isEmpty);
    if (empty.length) {
      throw new Error(`${what}: slot(s) rendered empty: ${empty.map((e) => e.slot).join(', ')}; events: ${JSON.stringify(state.events)}`);
    }
    if (state.ready && ended.length >= 3) {
      const slots = {};
      for (const e of ended) slots[e.slot] = e.ticketId;
      for (const id of ['slot-1', 'slot-2', 'slot-3']) {
        if (typeof slots[id] !== 'string' || !slots[id]) {
          throw new Error(`${what}: no ticketId for ${id}; events: ${JSON.stringify(state.events)}`);
        }
      }
      return slots;
    }
    await sleep(100);
  }
  throw new Error(
    `${what}: the three slots did not render within ${RENDER_TIMEOUT_MS} ms (ready: ${state.ready}); events: ${JSON.stringify(state.events)}`,
  );
}

/** Scrolls the element with this id into the middle of the viewport, or (null) to the very top. */
const scrollTo = (tab, id) =>
  evaluate(
    tab.client,
    id
      ? `document.getElementById(${JSON.stringify(id)}).scrollIntoView({block: 'center'}); window.scrollY`
      : 'window.scrollTo(0, 0); window.scrollY',
  );

/**
 * Scrolls the slot into view (centered) and waits until the page's IntersectionObserver has
 * reported it at least 50% in view (IO callbacks come with rendering frames, which a tab
 * sent to the background right away would not get). Returns when the scroll happened.
 */
async function scrollIntoView(tab, id, what) {
  const t0 = Date.now();
  await scrollTo(tab, id);
  const until = t0 + 3000;
  while (Date.now() < until) {
    const events = await readEvents(tab.client);
    const last = events.filter((e) => e.type === 'slotVisibilityChanged' && e.slot === id).pop();
    if (last && last.inViewPercentage >= 50) return t0;
    await sleep(20);
  }
  throw new Error(`${what}: #${id} was scrolled into view but the page never reported it in view`);
}

/** Keeps the slot in view LONG_DWELL_MS, then until its view event (at most LONG_DWELL_MAX_MS in all). */
async function dwellForView(tab, id, what) {
  const t0 = await scrollIntoView(tab, id, what);
  await sleep(LONG_DWELL_MS - (Date.now() - t0));
  while (Date.now() - t0 < LONG_DWELL_MAX_MS) {
    if (views(await readEvents(tab.client)).includes(id)) return;
    await sleep(100);
  }
}

function views(events) {
  const out = [];
  for (const e of events) if (e.type === 'impressionViewable' && !out.includes(e.slot)) out.push(e.slot);
  return out;
}

async function screenshot(tab, dir, name) {
  if (!dir) return;
  const { data } = await withTimeout(tab.client.Page.captureScreenshot({ format: 'png' }), 10000, `screenshot ${name}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), Buffer.from(data, 'base64'));
}

// ---- the scenario -----------------------------------------------------------------------------

async function tabA(opts) {
  const what = 'tab A';
  const tab = await chrome.newTab();
  await toFront(tab, what);
  await navigate(tab, opts.page, what);
  await toFront(tab, what);
  const slots = await waitRendered(tab, what);

  // 1. slot-1 in view long enough for a view.
  await dwellForView(tab, 'slot-1', what);
  // 2. slot-2 in view briefly, then back to the top.
  const t2 = await scrollIntoView(tab, 'slot-2', what);
  await sleep(SHORT_DWELL_MS - (Date.now() - t2));
  await scrollTo(tab, null);
  // 3. slot-3 in view, and at once to the background.
  await scrollIntoView(tab, 'slot-3', what);
  let events = await readEvents(tab.client);
  const blank = await chrome.newTab();
  await blank.client.Page.bringToFront();
  await chrome.browser.Target.activateTarget({ targetId: blank.targetId });
  let st;
  for (let i = 0; i < 20; i++) {
    st = await pageState(tab.client);
    if (st.visibility === 'hidden') break;
    await sleep(50);
  }
  if (st.visibility !== 'hidden') throw new Error(`${what} is not hidden after another tab was activated: ${JSON.stringify(st)}`);
  // A hidden tab produces no frames: its screenshot takes about 2 s, so it is taken while
  // the HIDDEN_MS go by (it does not make the tab visible).
  await Promise.all([sleep(HIDDEN_MS), screenshot(tab, opts.screenshots, 'tab-a.png')]);
  events = await readEvents(tab.client);
  await chrome.closeTab(tab);
  await sleep(AFTER_CLOSE_MS);
  await chrome.closeTab(blank);
  return { slots, views: views(events), events };
}

async function tabB(opts) {
  const what = 'tab B';
  const tab = await chrome.newTab();
  const prefix = opts.witnessOrigin + '/';
  const failed = [];
  let closed = false;
  // On the browser endpoint, not the tab's: a tab's own Fetch session ends when the tab is
  // closed, and the beacons its pagehide sends would then get through. No other tab makes
  // requests meanwhile (Tab A and the blank tab are closed), so this is Tab B's traffic.
  const onPaused = (p) => {
    const { requestId } = p;
    const cmd = p.request.url.startsWith(prefix)
      ? chrome.browser.Fetch.failRequest({ requestId, errorReason: 'ConnectionRefused' }).then(() => {
          failed.push(p.resourceType + (closed ? ' after close' : ''));
        })
      : chrome.browser.Fetch.continueRequest({ requestId });
    cmd.catch((e) => log(`Fetch: ${e.message} (${p.request.url})`));
  };
  chrome.browser.on('Fetch.requestPaused', onPaused);
  await chrome.browser.Fetch.enable({ patterns: [{ urlPattern: prefix.replace(/[*?\\]/g, (c) => '\\' + c) + '*' }] });
  await toFront(tab, what);
  await navigate(tab, opts.pageMissing, what);
  await toFront(tab, what);
  const slots = await waitRendered(tab, what);

  await dwellForView(tab, 'slot-1', what);
  const events = await readEvents(tab.client);
  await screenshot(tab, opts.screenshots, 'tab-b.png');
  closed = true;
  await chrome.closeTab(tab);
  await sleep(AFTER_CLOSE_MS);
  await chrome.browser.Fetch.disable();
  chrome.browser.removeListener('Fetch.requestPaused', onPaused);
  if (!failed.length) throw new Error(`${what}: no request to ${opts.witnessOrigin} was intercepted`);
  log(`${what}: failed ${failed.length} request(s) to ${opts.witnessOrigin}: ${failed.join(', ')}`);
  return { slots, views: views(events), events };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  chrome = await launchChromium(opts.chromium);
  const a = await tabA(opts);
  const b = await tabB(opts);
  return { a, b };
}

const cleanup = () => (chrome ? chrome.close() : Promise.resolve());

let finished = false;
function fail(err) {
  if (finished) return;
  finished = true;
  log(`FAILED: ${err && err.stack ? err.stack : err}`);
  if (chrome && chrome.stderrTail.length) log(`last chromium stderr lines:\n${chrome.stderrTail.slice(-10).join('\n')}`);
  cleanup().finally(() => process.exit(1));
}

const overall = setTimeout(() => fail(new Error(`timed out after ${OVERALL_TIMEOUT_MS} ms`)), OVERALL_TIMEOUT_MS);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => fail(new Error(`got ${sig}`)));
process.on('unhandledRejection', fail);

main().then(
  async (result) => {
    if (finished) return;
    await cleanup();
    if (finished) return;
    finished = true;
    clearTimeout(overall);
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
  },
  fail,
);
