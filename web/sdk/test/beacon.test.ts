import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Beacons, encode, MAX_BATCH, MAX_QUEUE, type Transport } from '../src/beacon';
import { FakeClock, settle } from './fakes';

const NODE = 'https://node.example';
const WITNESS = 'https://witness.example/';

interface Net {
  clock: FakeClock;
  t: Transport;
  online: boolean;
  /** url -> outcome of the next posts there: 'ok' | 'fail' | 'throw' */
  mode: Record<string, 'ok' | 'fail' | 'throw' | 'hang'>;
  posts: Array<{ url: string; body: string; delivered: boolean }>;
  beacons: Array<{ url: string; body: string }>;
  /** Events that arrived at `url` (delivered posts and beacons), as "event:ticket". */
  got(url: string): string[];
}

function net(opts: { fetch?: boolean; beacon?: boolean } = {}): Net {
  const clock = new FakeClock();
  const n: Net = {
    clock,
    online: true,
    mode: {},
    posts: [],
    beacons: [],
    t: {
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      online: () => n.online,
    },
    got(url: string): string[] {
      const bodies = n.posts
        .filter((p) => p.url === url && p.delivered)
        .map((p) => p.body)
        .concat(n.beacons.filter((b) => b.url === url).map((b) => b.body));
      return bodies.flatMap((b) => JSON.parse(b).events.map((e: { event: string; ticket: string }) => e.event + ':' + e.ticket));
    },
  };
  if (opts.fetch !== false) {
    n.t.post = (url, body) => {
      const mode = n.mode[url] || 'ok';
      if (mode === 'throw') throw new TypeError('keepalive quota');
      const rec = { url, body, delivered: mode === 'ok' };
      n.posts.push(rec);
      if (mode === 'hang') return new Promise(() => undefined);
      return mode === 'ok' ? Promise.resolve() : Promise.reject(new TypeError('Failed to fetch'));
    };
  }
  if (opts.beacon !== false) {
    n.t.beacon = (url, body) => {
      n.beacons.push({ url, body });
      return true;
    };
  }
  return n;
}

const E = NODE + '/v1/e';
const W = 'https://witness.example/v1/e';

test('the wire format: {"events":[{"ticket","event"}]}', () => {
  assert.equal(
    encode([{ ticket: 'tk.1', event: 'impression' }, { ticket: 'tk.1', event: 'view' }]),
    '{"events":[{"ticket":"tk.1","event":"impression"},{"ticket":"tk.1","event":"view"}]}',
  );
});

test('events of one tick share one request to each destination; node and witness both get them', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, WITNESS]);
  b.send('a', 'impression');
  b.send('b', 'impression');
  assert.equal(n.posts.length, 0, 'batched until the tick ends');
  n.clock.advance(0);
  await settle();
  assert.deepEqual(
    n.posts.map((p) => p.url),
    [E, W],
  );
  assert.deepEqual(n.got(E), ['impression:a', 'impression:b']);
  assert.deepEqual(n.got(W), ['impression:a', 'impression:b']);
});

test('dedupe: the same (ticket, event) goes once per destination; impression and view of one ticket both go', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, WITNESS]);
  b.send('a', 'impression');
  b.send('a', 'impression');
  n.clock.advance(0);
  await settle();
  b.send('a', 'impression');
  b.send('a', 'view');
  b.send('a', 'view');
  b.send('a', 'click');
  b.send('a', 'click');
  n.clock.advance(0);
  await settle();
  for (const url of [E, W]) assert.deepEqual(n.got(url), ['impression:a', 'view:a', 'click:a']);
  assert.equal(n.posts.length, 4);
});

test('the same base twice (node == witness) is one destination', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, NODE + '/', null, '']);
  b.send('a', 'view');
  n.clock.advance(0);
  await settle();
  assert.deepEqual(n.posts.map((p) => p.url), [E]);
});

test('offline: events wait, then go once back online, in order, none twice', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, WITNESS]);
  n.online = false;
  b.send('a', 'impression');
  b.send('b', 'impression');
  n.clock.advance(0);
  b.send('a', 'view');
  b.send('a', 'impression'); // a duplicate while offline
  n.clock.advance(10000);
  await settle();
  assert.equal(n.posts.length + n.beacons.length, 0, 'nothing sent while offline');
  assert.equal(b.pending(NODE).length, 3);
  n.online = true;
  b.online();
  await settle();
  n.clock.advance(120000);
  await settle();
  for (const url of [E, W]) assert.deepEqual(n.got(url), ['impression:a', 'impression:b', 'view:a']);
  assert.equal(b.pending(NODE).length, 0);
  b.send('b', 'impression');
  n.clock.advance(60000);
  await settle();
  assert.deepEqual(n.got(E), ['impression:a', 'impression:b', 'view:a'], 'nothing resent later');
});

test('a failed request is retried with backoff, in order, and a failing witness never holds back the node', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, WITNESS]);
  n.mode[W] = 'fail';
  b.send('a', 'impression');
  n.clock.advance(0);
  await settle();
  b.send('b', 'impression');
  n.clock.advance(0);
  await settle();
  assert.deepEqual(n.got(E), ['impression:a', 'impression:b']);
  assert.deepEqual(n.got(W), []);
  // Retries at +1 s, +2 s, +4 s ... each failing.
  const tries = () => n.posts.filter((p) => p.url === W).length;
  assert.equal(tries(), 1);
  n.clock.advance(1000);
  await settle();
  assert.equal(tries(), 2);
  n.clock.advance(1999);
  await settle();
  assert.equal(tries(), 2);
  n.clock.advance(1);
  await settle();
  assert.equal(tries(), 3);
  n.mode[W] = 'ok';
  n.clock.advance(4000);
  await settle();
  assert.deepEqual(n.got(W), ['impression:a', 'impression:b']);
  const bodies = n.posts.filter((p) => p.url === W).map((p) => p.body);
  assert.equal(bodies[bodies.length - 1], encode([{ ticket: 'a', event: 'impression' }, { ticket: 'b', event: 'impression' }]));
});

test('the backoff stops growing at 60 s, and the online event retries at once', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE]);
  n.mode[E] = 'fail';
  b.send('a', 'click');
  for (let i = 0; i < 12; i++) {
    n.clock.advance(60000);
    await settle();
  }
  const before = n.posts.length;
  n.clock.advance(60000);
  await settle();
  assert.equal(n.posts.length, before + 1, 'one try a minute');
  n.mode[E] = 'ok';
  b.online();
  await settle();
  assert.deepEqual(n.got(E), ['click:a']);
});

test('the offline buffer is bounded: the oldest go first, the rest are delivered in order in batches', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE]);
  n.online = false;
  const extra = 37;
  for (let i = 0; i < MAX_QUEUE + extra; i++) b.send('t' + i, 'impression');
  assert.equal(b.pending(NODE).length, MAX_QUEUE);
  n.online = true;
  b.online();
  for (let i = 0; i < 50; i++) await settle();
  const got = n.got(E);
  assert.equal(got.length, MAX_QUEUE);
  assert.equal(got[0], 'impression:t' + extra);
  assert.equal(got[got.length - 1], 'impression:t' + (MAX_QUEUE + extra - 1));
  assert.equal(new Set(got).size, got.length);
  assert.ok(n.posts.every((p) => JSON.parse(p.body).events.length <= MAX_BATCH));
});

test('fetch missing or throwing synchronously: sendBeacon carries the events', async () => {
  const n = net({ fetch: false });
  const b = new Beacons(n.t);
  b.setDestinations([NODE]);
  b.send('a', 'impression');
  n.clock.advance(0);
  assert.deepEqual(n.got(E), ['impression:a']);

  const m = net();
  const c = new Beacons(m.t);
  c.setDestinations([NODE, WITNESS]);
  m.mode[E] = 'throw';
  c.send('a', 'view');
  m.clock.advance(0);
  await settle();
  assert.deepEqual(m.beacons.map((x) => x.url), [E]);
  assert.deepEqual(m.got(E), ['view:a']);
  assert.deepEqual(m.got(W), ['view:a']);
});

test('neither fetch nor sendBeacon accepting: kept and retried', async () => {
  const n = net({ fetch: false, beacon: false });
  let accept = false;
  const sent: string[] = [];
  n.t.beacon = (_url, body) => {
    if (accept) sent.push(body);
    return accept;
  };
  const b = new Beacons(n.t);
  b.setDestinations([NODE]);
  b.send('a', 'impression');
  n.clock.advance(0);
  assert.equal(b.pending(NODE).length, 1);
  accept = true;
  n.clock.advance(1000);
  assert.deepEqual(sent, [encode([{ ticket: 'a', event: 'impression' }])]);
});

test('page hidden: what is queued goes by sendBeacon, what is in flight is left alone', async () => {
  const n = net();
  const b = new Beacons(n.t);
  b.setDestinations([NODE, WITNESS]);
  n.mode[E] = 'hang';
  b.send('a', 'impression');
  n.clock.advance(0); // a is in flight to E (keepalive), delivered to W
  await settle();
  b.send('a', 'view'); // queued, its batching timer not run yet
  b.flushOnHide();
  assert.deepEqual(
    n.beacons.map((x) => [x.url, x.body]),
    [
      [E, encode([{ ticket: 'a', event: 'view' }])],
      [W, encode([{ ticket: 'a', event: 'view' }])],
    ],
  );
  n.clock.advance(0);
  await settle();
  assert.deepEqual(n.got(W), ['impression:a', 'view:a'], 'not sent twice');
});
