import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LARGE_AD_AREA, ViewTracker, viewRule, type ViewInputs } from '../src/viewability';
import { FakeClock } from './fakes';

const SMALL = 300 * 250;
const LARGE = 970 * 250;

function tracker(opts: { video?: boolean; area?: number; initial?: Partial<ViewInputs> } = {}) {
  const clock = new FakeClock();
  const views: number[] = [];
  const t = new ViewTracker(clock, !!opts.video, opts.area ?? SMALL, opts.initial ?? {}, () => views.push(clock.t));
  return { clock, t, views };
}

test('the rules: 50%/1 s, 30%/1 s from 242,500 px, video 50%/2 s', () => {
  assert.equal(LARGE, LARGE_AD_AREA);
  assert.deepEqual(viewRule(false, SMALL), { ratio: 0.5, ms: 1000 });
  assert.deepEqual(viewRule(false, LARGE_AD_AREA - 1), { ratio: 0.5, ms: 1000 });
  assert.deepEqual(viewRule(false, LARGE), { ratio: 0.3, ms: 1000 });
  assert.deepEqual(viewRule(true, LARGE), { ratio: 0.5, ms: 2000 });
});

test('exactly 1 s continuous at 50% is a view, at 1000 ms and not before', () => {
  const { clock, t, views } = tracker();
  clock.advance(5000); // out of view: nothing
  t.set({ ratio: 0.5 });
  assert.ok(t.counting);
  clock.advance(999);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [6000]);
  assert.ok(t.viewed);
  clock.advance(10000);
  t.set({ ratio: 0 });
  t.set({ ratio: 1 });
  clock.advance(10000);
  assert.equal(views.length, 1, 'a view is counted once');
});

test('999 ms then out of view: no view, and the count starts again from zero', () => {
  const { clock, t, views } = tracker();
  t.set({ ratio: 0.8 });
  clock.advance(999);
  t.set({ ratio: 0.2 });
  assert.ok(!t.counting);
  clock.advance(5000);
  assert.deepEqual(views, []);
  t.set({ ratio: 0.6 });
  clock.advance(999);
  assert.deepEqual(views, [], 'the earlier 999 ms do not carry over');
  clock.advance(1);
  assert.deepEqual(views, [6999]);
});

test('ratio changes above the threshold do not restart the count', () => {
  const { clock, t, views } = tracker();
  t.set({ ratio: 0.5 });
  clock.advance(400);
  t.set({ ratio: 1 });
  clock.advance(400);
  t.set({ ratio: 0.75 });
  clock.advance(200);
  assert.deepEqual(views, [1000]);
});

test('below 50% never counts for a small ad', () => {
  const { clock, t, views } = tracker();
  t.set({ ratio: 0.49 });
  clock.advance(60000);
  t.set({ ratio: 0.3 });
  clock.advance(60000);
  assert.deepEqual(views, []);
});

test('a large ad (>= 242,500 px) needs 30%', () => {
  const { clock, t, views } = tracker({ area: LARGE });
  t.set({ ratio: 0.29 });
  clock.advance(5000);
  assert.deepEqual(views, []);
  t.set({ ratio: 0.3 });
  clock.advance(999);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [6000]);
});

test('video: 50% for 2 continuous seconds, only while playing', () => {
  const { clock, t, views } = tracker({ video: true, area: LARGE });
  t.set({ ratio: 0.6 });
  clock.advance(5000);
  assert.deepEqual(views, [], 'in view but not playing');
  t.set({ playing: true });
  clock.advance(1500);
  t.set({ playing: false }); // paused: the count resets
  clock.advance(100);
  t.set({ playing: true });
  clock.advance(1999);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [8600]);
});

test('video: the 30% rule does not apply', () => {
  const { clock, t, views } = tracker({ video: true, area: LARGE, initial: { playing: true } });
  t.set({ ratio: 0.4 });
  clock.advance(10000);
  assert.deepEqual(views, []);
});

test('a hidden tab resets the count; time accrues only while visible', () => {
  const { clock, t, views } = tracker();
  t.set({ ratio: 1 });
  clock.advance(900);
  t.set({ visible: false });
  clock.advance(5000);
  assert.deepEqual(views, []);
  t.set({ visible: true });
  clock.advance(900);
  assert.deepEqual(views, []);
  clock.advance(100);
  assert.deepEqual(views, [6900]);
});

test('losing window focus resets the count', () => {
  const { clock, t, views } = tracker({ initial: { focused: false } });
  t.set({ ratio: 1 });
  clock.advance(3000);
  assert.deepEqual(views, [], 'not focused from the start');
  t.set({ focused: true });
  clock.advance(500);
  t.set({ focused: false });
  clock.advance(500);
  t.set({ focused: true });
  clock.advance(999);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [5000]);
});

test('nothing counts while prerendering; counting starts at activation', () => {
  const { clock, t, views } = tracker({ initial: { prerendering: true, ratio: 1 } });
  assert.ok(!t.counting);
  clock.advance(10000);
  assert.deepEqual(views, []);
  t.set({ prerendering: false });
  clock.advance(999);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [11000]);
});

test('destroy stops a running count', () => {
  const { clock, t, views } = tracker();
  t.set({ ratio: 1 });
  clock.advance(500);
  t.destroy();
  clock.advance(5000);
  t.set({ ratio: 0.9 });
  clock.advance(5000);
  assert.deepEqual(views, []);
  assert.equal(clock.pending, 0, 'no timer left behind');
});

test('a timer that fires early is re-armed for the rest; one that fires late counts at once', () => {
  const clock = new FakeClock();
  const views: number[] = [];
  // A scheduler whose timers fire after half the delay asked for.
  const early = { now: clock.now, setTimer: (fn: () => void, ms: number) => clock.setTimer(fn, Math.ceil(ms / 2)), clearTimer: clock.clearTimer };
  const t = new ViewTracker(early, false, SMALL, { ratio: 1 }, () => views.push(clock.t));
  clock.advance(500);
  assert.deepEqual(views, []);
  clock.advance(499);
  assert.deepEqual(views, []);
  clock.advance(1);
  assert.deepEqual(views, [1000]);
  assert.ok(t.viewed);

  // No timer at all (a throttled background timer): the next input past the mark counts.
  const frozen = { now: clock.now, setTimer: () => 0, clearTimer: () => undefined };
  const late: number[] = [];
  const t2 = new ViewTracker(frozen, false, SMALL, { ratio: 0.6 }, () => late.push(clock.t));
  clock.advance(1500);
  t2.set({ ratio: 0.7 });
  assert.deepEqual(late, [clock.t]);
});
