import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fillBody, httpUrl, parseFill } from '../src/fill';
import { refreshWait, REFRESH_MIN_MS } from '../src/throttle';
import { ad } from './fakes';

test('the request body: placement, viewer when set, pageUrl', () => {
  assert.equal(fillBody('sidebar', 'vw_1', 'https://p.example/a?b=1'), '{"placement":"sidebar","viewer":"vw_1","pageUrl":"https://p.example/a?b=1"}');
  assert.equal(fillBody('sidebar', null, 'https://p.example/'), '{"placement":"sidebar","pageUrl":"https://p.example/"}');
});

test('the first ad of an answer is used', () => {
  const answer = ad('tk1', { kind: 'image', mediaUrl: 'https://cdn.example/a.png' }) as { ads: unknown[] };
  answer.ads.push((ad('tk2') as { ads: unknown[] }).ads[0]);
  assert.deepEqual(parseFill(answer), {
    ticket: 'tk1',
    ticketId: 'id-tk1',
    expiresAt: '2030-01-01T00:00:00Z',
    creative: {
      kind: 'image',
      title: 'Title tk1',
      text: 'Text tk1',
      mediaUrl: 'https://cdn.example/a.png',
      clickUrl: 'https://advertiser.example/landing',
    },
  });
});

test('no ad: empty, malformed or unsafe answers', () => {
  const bad: unknown[] = [
    null,
    'x',
    {},
    { ads: [], reason: 'no_campaign' },
    { ads: [{}] },
    { ads: [{ ticket: '', creative: {} }] },
    ad('t', { kind: 'banner' }),
    ad('t', { clickUrl: 'javascript:alert(1)' }),
    ad('t', { clickUrl: '/relative' }),
    ad('t', { kind: 'image', mediaUrl: null }),
    ad('t', { kind: 'video', mediaUrl: 'data:video/mp4;base64,AAAA' }),
  ];
  for (const a of bad) assert.equal(parseFill(a), null, JSON.stringify(a));
});

test('missing strings become empty', () => {
  const a = parseFill({ ads: [{ ticket: 't', creative: { kind: 'text', clickUrl: 'http://x.example/' } }] });
  assert.deepEqual(a && a.creative, { kind: 'text', title: '', text: '', mediaUrl: null, clickUrl: 'http://x.example/' });
  assert.equal(httpUrl('HTTPS://X.example/p'), 'https://x.example/p');
});

test('refresh throttle: 30 s from the last request', () => {
  assert.equal(REFRESH_MIN_MS, 30000);
  assert.equal(refreshWait(null, 5), 0);
  assert.equal(refreshWait(1000, 1000), 30000);
  assert.equal(refreshWait(1000, 30999), 1);
  assert.equal(refreshWait(1000, 31000), 0);
  assert.equal(refreshWait(1000, 99999), 0);
});
