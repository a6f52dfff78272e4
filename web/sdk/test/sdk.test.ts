import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boot, parseSize, scriptConfig, type Api, type RenderEndedEvent } from '../src/sdk';
import { ad, fakePage, fills, htmlWrites, json, settle, type FakePage } from './fakes';

const NODE = 'https://node.example';
const WITNESS = 'https://witness.example';

/** A page whose script tag names the node and the witness. */
function page(opts: { online?: boolean; lazy?: boolean; witness?: boolean } = {}): FakePage {
  const p = fakePage(opts);
  const script = p.doc.createElement('script');
  script.setAttribute('src', NODE + '/sdk.js');
  script.setAttribute('data-node', NODE);
  if (opts.witness !== false) script.setAttribute('data-witness', WITNESS);
  if (opts.lazy) script.setAttribute('data-lazy', '');
  p.doc.currentScript = script;
  return p;
}

const start = (p: FakePage): Api => boot(p.win, p.doc.currentScript as unknown as HTMLScriptElement);
const adescrow = (p: FakePage) => p.raw.adescrow as Api;

/** Boots, lets the fill answers arrive and the beacon batches go. */
async function run(p: FakePage): Promise<Api> {
  const api = start(p);
  await settle();
  p.clock.advance(0);
  await settle();
  return api;
}

test('script tag settings; data-node defaults to the origin the script came from', () => {
  const p = fakePage();
  const s = p.doc.createElement('script');
  s.setAttribute('src', 'https://hoster.example:8443/sdk.js?v=1');
  s.setAttribute('data-viewer', 'vw_9');
  s.setAttribute('data-lazy', 'true');
  const cfg = scriptConfig(s as unknown as HTMLScriptElement, 'https://pub.example/');
  assert.deepEqual(cfg, { node: 'https://hoster.example:8443', viewer: 'vw_9', lazyLoad: true });
  assert.deepEqual(parseSize('300x250'), [300, 250]);
  assert.equal(parseSize('300'), null);
  assert.equal(parseSize('0x250'), null);
});

test('a declared slot: reserved box before the request, the fill request, a text ad rendered safely', async () => {
  const p = page();
  const slot = p.slot('side', {
    'data-adescrow-slot': 'sidebar',
    'data-adescrow-size': '300x250',
  });
  const hostile = '<img src=x onerror=alert(1)>';
  p.fill = async () => json(ad('tk1', { title: hostile, text: '<script>alert(2)</script>' }));
  const writes = htmlWrites.length;
  const api = start(p);
  // Sized before any answer: no layout shift.
  assert.equal(slot.style.width, '300px');
  assert.equal(slot.style.height, '250px');
  await settle();
  const calls = fills(p);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, NODE + '/v1/fill');
  assert.equal(calls[0].init.method, 'POST');
  assert.deepEqual(calls[0].init.headers, { 'Content-Type': 'text/plain' });
  assert.equal(calls[0].init.body, '{"placement":"sidebar","pageUrl":"https://publisher.example/article?id=1"}');

  const a = slot.find('a')!;
  assert.equal(a.getAttribute('href'), 'https://advertiser.example/landing');
  assert.equal(a.getAttribute('target'), '_blank');
  assert.equal(a.getAttribute('rel'), 'noopener sponsored');
  assert.ok(slot.textContent.includes(hostile), 'creative strings are text');
  assert.equal(slot.all().filter((e) => e.tagName === 'IMG' || e.tagName === 'SCRIPT').length, 0);
  assert.equal(htmlWrites.length, writes, 'no innerHTML');
  assert.equal(api.getSlots()[0].placement, 'sidebar');
});

test('impression when rendered, view after 1 s at 50%, click once: to the node and the witness', async () => {
  const p = page();
  const slot = p.slot('s1', { 'data-adescrow-slot': 'top', 'data-adescrow-size': '728x90' });
  const seen: string[] = [];
  p.raw.adescrow = {
    cmd: [
      () => {
        const api = adescrow(p);
        api.addEventListener('slotRenderEnded', (e) => seen.push('rendered:' + e.isEmpty + ':' + (e.size || []).join('x')));
        api.addEventListener('impressionViewable', (e) => seen.push('viewable:' + e.slot.id));
        api.addEventListener('slotVisibilityChanged', (e) => seen.push('visible:' + e.inViewPercentage));
      },
    ],
  };
  await run(p);
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  assert.deepEqual(p.sent(WITNESS), ['impression:t1']);
  const a = slot.find('a')!;
  p.viewIO().fire(a, 0.5);
  p.clock.advance(999);
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  p.clock.advance(1);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1', 'view:t1']);
  assert.deepEqual(p.sent(WITNESS), ['impression:t1', 'view:t1']);
  a.dispatch('click');
  a.dispatch('click');
  a.dispatch('auxclick');
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1', 'view:t1', 'click:t1']);
  assert.deepEqual(p.sent(WITNESS), ['impression:t1', 'view:t1', 'click:t1']);
  assert.deepEqual(seen, ['rendered:false:728x90', 'visible:50', 'viewable:s1']);
  const beacon = p.fetches.filter((f) => f.url === NODE + '/v1/e')[0];
  assert.deepEqual(
    { method: beacon.init.method, keepalive: beacon.init.keepalive, headers: beacon.init.headers, body: beacon.init.body },
    {
      method: 'POST',
      keepalive: true,
      headers: { 'Content-Type': 'text/plain' },
      body: '{"events":[{"ticket":"t1","event":"impression"}]}',
    },
  );
});

test('a hidden tab or a blurred window resets the view count', async () => {
  const p = page({ witness: false });
  const slot = p.slot('s1', { 'data-adescrow-slot': 'top', 'data-adescrow-size': '300x250' });
  await run(p);
  p.viewIO().fire(slot.find('a')!, 1);
  p.clock.advance(900);
  p.doc.visibilityState = 'hidden';
  p.doc.dispatch('visibilitychange');
  p.clock.advance(5000);
  p.doc.visibilityState = 'visible';
  p.doc.dispatch('visibilitychange');
  p.clock.advance(900);
  p.raw.dispatch('blur');
  p.clock.advance(5000);
  p.raw.dispatch('focus');
  p.clock.advance(999);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  p.clock.advance(1);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1', 'view:t1']);
});

test('no ad: the slot collapses, or shows its fallback in the reserved box', async () => {
  const p = page();
  const a = p.slot('a', { 'data-adescrow-slot': 'a', 'data-adescrow-size': '300x250' });
  const b = p.slot('b', { 'data-adescrow-slot': 'b', 'data-adescrow-size': '300x250', 'data-adescrow-fallback': '<p>House ad</p>' });
  const c = p.slot('c', { 'data-adescrow-slot': 'c', 'data-adescrow-size': '300x250', 'data-adescrow-fallback': '' });
  p.fill = async (_url, call) => {
    const placement = JSON.parse(call.init.body as string).placement;
    if (placement === 'a') return json({ ads: [], reason: 'no_campaign' });
    if (placement === 'b') return json({ error: 'boom' }, 500);
    throw new TypeError('Failed to fetch');
  };
  const ended: RenderEndedEvent[] = [];
  p.raw.adescrow = { cmd: [() => adescrow(p).addEventListener('slotRenderEnded', (e) => ended.push(e))] };
  await run(p);
  assert.equal(a.style.display, 'none');
  assert.equal(a.style.height, '0');
  assert.equal(b.innerHTML, '<p>House ad</p>');
  assert.equal(b.style.height, '250px');
  assert.equal(c.style.display, '', 'an empty fallback keeps the empty box');
  assert.equal(c.style.height, '250px');
  assert.deepEqual(
    ended.map((e) => [e.slot.id, e.isEmpty, e.size]).sort(),
    [
      ['a', true, null],
      ['b', true, null],
      ['c', true, null],
    ],
  );
  assert.equal(p.fetches.filter((f) => /\/v1\/e$/.test(f.url)).length, 0, 'no events for no ad');
});

test('consent: false, failing or too slow means no request and no ad; true means an ad', async () => {
  for (const [answer, expectFill] of [
    [() => Promise.resolve(false), false],
    [() => Promise.reject(new Error('cmp')), false],
    [() => new Promise<boolean>(() => undefined), false],
    [
      () => {
        throw new Error('sync');
      },
      false,
    ],
    [() => Promise.resolve(true), true],
    [() => true, true],
  ] as const) {
    const p = page();
    const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
    p.raw.adescrow = { cmd: [() => adescrow(p).setConfig({ consent: answer, consentTimeout: 800 })] };
    start(p);
    await settle();
    p.clock.advance(799);
    await settle();
    if (expectFill) {
      assert.equal(fills(p).length, 1);
      assert.ok(s.find('a'));
    } else {
      p.clock.advance(1);
      await settle();
      assert.equal(fills(p).length, 0, String(answer));
      assert.equal(s.style.display, 'none');
    }
  }
});

test('the viewer id is passed on in the fill request', async () => {
  const p = page();
  p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  p.raw.adescrow = { cmd: [() => adescrow(p).setConfig({ viewer: 'vw_abc' })] };
  await run(p);
  assert.equal(JSON.parse(fills(p)[0].init.body as string).viewer, 'vw_abc');
});

test('command queue: commands queued before load run after it, in order; later ones at once', async () => {
  const p = page();
  p.slot('m', {});
  const order: string[] = [];
  const stub = { cmd: [] as Array<() => void> };
  p.raw.adescrow = stub;
  const keptQueue = stub.cmd;
  stub.cmd.push(() => order.push('first:' + typeof adescrow(p).defineSlot));
  stub.cmd.push(() => {
    throw new Error('a broken command');
  });
  stub.cmd.push(() => {
    const api = adescrow(p);
    const slot = api.defineSlot('m', { placement: 'manual', size: [320, 50] });
    api.display(slot!);
    order.push('second');
  });
  assert.deepEqual(order, []);
  const api = start(p);
  assert.equal(api, stub as unknown, 'the page object is kept');
  assert.deepEqual(order, ['first:function', 'second']);
  assert.equal(p.errors.length, 1, 'the broken command is logged, the others ran');
  keptQueue.push(() => order.push('after'));
  adescrow(p).cmd.push(() => order.push('after2'));
  assert.deepEqual(order, ['first:function', 'second', 'after', 'after2']);
  await settle();
  assert.equal(JSON.parse(fills(p)[0].init.body as string).placement, 'manual');
  assert.equal(await api.ready, api);
});

test('loading the script twice does no double work', async () => {
  const p = page();
  p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  const first = start(p);
  const listeners = p.doc.listenerCount() + p.raw.listenerCount();
  const ios = p.ios.length;
  const second = start(p);
  assert.equal(second, first);
  assert.equal(adescrow(p), first);
  assert.equal(p.doc.listenerCount() + p.raw.listenerCount(), listeners);
  assert.equal(p.ios.length, ios);
  await settle();
  p.clock.advance(0);
  await settle();
  assert.equal(fills(p).length, 1);
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
});

test('ready resolves, and never rejects, even when start-up fails', async () => {
  const p = page();
  const api = start(p);
  assert.equal(await api.ready, api);

  const broken = page();
  (broken.doc as unknown as Record<string, unknown>).addEventListener = () => {
    throw new Error('hostile page');
  };
  const b = start(broken);
  let rejected = false;
  await b.ready.then(
    () => undefined,
    () => (rejected = true),
  );
  assert.equal(rejected, false);
  assert.equal(broken.errors.length, 1);
});

test('refresh: at most once every 30 s per slot, a too-early one is ignored with a warning and an event', async () => {
  const p = page({ witness: false });
  const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  const api = await run(p);
  const ignored: number[] = [];
  api.addEventListener('slotRefreshIgnored', (e) => ignored.push(e.retryIn));
  assert.equal(fills(p).length, 1);
  p.clock.advance(10000);
  api.refresh();
  await settle();
  assert.equal(fills(p).length, 1);
  assert.deepEqual(ignored, [20000]);
  assert.equal(p.warnings.length, 1);
  assert.match(p.warnings[0], /refresh of s ignored/);
  p.clock.advance(19999);
  api.refresh(['s']);
  await settle();
  assert.equal(fills(p).length, 1);
  p.clock.advance(1);
  api.refresh([api.getSlots()[0]]);
  await settle();
  p.clock.advance(0);
  await settle();
  assert.equal(fills(p).length, 2);
  assert.ok(s.textContent.includes('Title t2'), 'the new ad replaced the old');
  assert.ok(!s.textContent.includes('Title t1'));
  assert.deepEqual(p.sent(NODE), ['impression:t1', 'impression:t2']);
  api.refresh();
  assert.equal(ignored.length, 3);
});

test('lazy loading: the request waits until the slot comes near the viewport', async () => {
  const p = page({ lazy: true });
  const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  await run(p);
  assert.equal(fills(p).length, 0);
  assert.equal(s.style.height, '250px', 'the box is reserved all the same');
  const lazy = p.lazyIO()!;
  assert.match(String(lazy.opts.rootMargin), /^\d+px/);
  lazy.fire(s, 0);
  await settle();
  assert.equal(fills(p).length, 0);
  lazy.fire(s, 0.01);
  await settle();
  assert.equal(fills(p).length, 1);
  assert.ok(s.find('a'));
});

test('prerendering: nothing is requested or counted until activation', async () => {
  const p = page();
  p.doc.prerendering = true;
  const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  const api = await run(p);
  assert.equal(await api.ready, api, 'ready does not wait for activation');
  p.clock.advance(60000);
  await settle();
  assert.equal(p.fetches.length, 0);
  p.doc.prerendering = false;
  p.doc.dispatch('prerenderingchange');
  await settle();
  p.clock.advance(0);
  await settle();
  assert.equal(fills(p).length, 1);
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  p.viewIO().fire(s.find('a')!, 1);
  p.clock.advance(1000);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1', 'view:t1']);
});

test('image ads: the impression waits for the image to load; a broken image collapses the slot', async () => {
  const p = page({ witness: false });
  const ok = p.slot('ok', { 'data-adescrow-slot': 'ok', 'data-adescrow-size': '300x250' });
  const bad = p.slot('bad', { 'data-adescrow-slot': 'bad', 'data-adescrow-size': '300x250' });
  p.fill = async (_u, call) => {
    const placement = JSON.parse(call.init.body as string).placement;
    return json(ad(placement, { kind: 'image', title: 'Alt "text"', mediaUrl: 'https://cdn.example/' + placement + '.png' }));
  };
  await run(p);
  const img = ok.find('img')!;
  assert.equal(img.getAttribute('src'), 'https://cdn.example/ok.png');
  assert.equal(img.getAttribute('alt'), 'Alt "text"');
  assert.deepEqual(p.sent(NODE), []);
  img.dispatch('load');
  bad.find('img')!.dispatch('error');
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:ok']);
  assert.equal(bad.style.display, 'none');
});

test('video ads: muted inline autoplay; the view needs 2 s at 50% while playing', async () => {
  const p = page({ witness: false });
  const s = p.slot('v', { 'data-adescrow-slot': 'v', 'data-adescrow-size': '640x360' });
  p.fill = async () => json(ad('vid', { kind: 'video', mediaUrl: 'https://cdn.example/v.mp4' }));
  await run(p);
  const v = s.find('video')!;
  assert.equal(v.muted, true);
  assert.equal(v.playsInline, true);
  for (const attr of ['muted', 'autoplay', 'playsinline']) assert.ok(v.hasAttribute(attr), attr);
  v.dispatch('loadeddata');
  p.viewIO().fire(s.find('a')!, 0.6);
  p.clock.advance(5000);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:vid'], 'not playing yet');
  v.dispatch('playing');
  p.clock.advance(1500);
  v.dispatch('waiting');
  v.dispatch('playing');
  p.clock.advance(1999);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:vid']);
  p.clock.advance(1);
  p.clock.advance(0);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:vid', 'view:vid']);
});

test('offline: events wait and go once the browser is back online; page hide uses sendBeacon', async () => {
  const p = page({ online: false });
  p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  await run(p);
  p.clock.advance(5000);
  await settle();
  assert.deepEqual(p.sent(NODE), []);
  (p.raw.navigator as { onLine: boolean }).onLine = true;
  p.raw.dispatch('online');
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  assert.deepEqual(p.sent(WITNESS), ['impression:t1']);

  // Queued when the page goes away: handed to sendBeacon.
  const q = page();
  const s = q.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  start(q);
  await settle();
  s.find('a')!.dispatch('click');
  q.raw.dispatch('pagehide');
  assert.deepEqual(
    q.beacons.map((b) => b.url),
    [NODE + '/v1/e', WITNESS + '/v1/e'],
  );
  assert.equal(q.beacons[0].body, '{"events":[{"ticket":"t1","event":"impression"},{"ticket":"t1","event":"click"}]}');
  q.clock.advance(0);
  await settle();
  assert.deepEqual(q.sent(NODE), ['impression:t1', 'click:t1'], 'not sent again by fetch');
});

test('destroySlots stops measuring, clears the slot and lets it be defined again', async () => {
  const p = page({ witness: false });
  const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  s.style.cssText = 'margin: 4px';
  const api = await run(p);
  const a = s.find('a')!;
  p.viewIO().fire(a, 1);
  assert.equal(api.destroySlots(['s']), true);
  assert.equal(s.children.length, 0);
  assert.equal(s.style.cssText, 'margin: 4px;');
  p.clock.advance(5000);
  await settle();
  assert.deepEqual(p.sent(NODE), ['impression:t1']);
  assert.equal(api.getSlots().length, 0);
  assert.equal(api.destroySlots(), false);
  const again = api.defineSlot(s as unknown as HTMLElement, { placement: 'y', size: [300, 250] });
  assert.ok(again);
  assert.equal(api.defineSlot('nope', { placement: 'y', size: [1, 1] }), null);
  assert.equal(api.defineSlot('s', { placement: '', size: [300, 250] }), again, 'an element has one slot');
});

test('an answer that comes after its slot was destroyed or refreshed is dropped', async () => {
  const p = page({ witness: false });
  const s = p.slot('s', { 'data-adescrow-slot': 'x', 'data-adescrow-size': '300x250' });
  let release: () => void = () => undefined;
  p.fill = () => new Promise((r) => (release = () => r(json(ad('late')))));
  const api = start(p);
  await settle();
  api.destroySlots();
  release();
  await settle();
  p.clock.advance(0);
  await settle();
  assert.equal(s.children.length, 0);
  assert.deepEqual(p.sent(NODE), []);
});
