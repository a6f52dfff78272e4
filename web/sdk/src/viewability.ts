/**
 * IAB/MRC viewability for one rendered ad, with no DOM: the page feeds it the inputs it
 * observes (in-view ratio, tab visibility, window focus, prerendering, video playing) and
 * it calls `onView` once when the ad has met the standard. Clock and timers are injected
 * so tests drive it with a fake clock.
 *
 *   display ad: >= 50% of its pixels in view for 1 continuous second
 *               (>= 30% when its area is >= 242,500 px, i.e. 970x250 and up)
 *   video ad:   >= 50% in view for 2 continuous seconds while playing
 *
 * Time accrues only while every condition holds: the tab is visible, the window has focus,
 * the document is not prerendering, the ad is in view above the threshold and (video) it
 * is playing. Losing any one of them resets the continuous count to zero.
 */

export interface Scheduler {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export interface ViewInputs {
  /** Fraction of the ad's pixels in the viewport, 0..1. */
  ratio: number;
  /** document.visibilityState === 'visible' */
  visible: boolean;
  /** document.hasFocus() */
  focused: boolean;
  /** document.prerendering */
  prerendering: boolean;
  /** Video only: the video is playing. Ignored for display ads. */
  playing: boolean;
}

/** Area in CSS pixels from which the 30% rule applies to display ads. */
export const LARGE_AD_AREA = 242500;

/** The in-view fraction and continuous time an ad needs. */
export function viewRule(video: boolean, area: number): { ratio: number; ms: number } {
  if (video) return { ratio: 0.5, ms: 2000 };
  return { ratio: area >= LARGE_AD_AREA ? 0.3 : 0.5, ms: 1000 };
}

export class ViewTracker {
  private readonly rule: { ratio: number; ms: number };
  private readonly state: ViewInputs;
  /** When the current continuous run started, or null when the conditions do not hold. */
  private since: number | null = null;
  private timer: unknown = null;
  /** Viewed or destroyed: nothing more to do. */
  private done = false;
  private seen = false;

  constructor(
    private readonly clock: Scheduler,
    private readonly video: boolean,
    area: number,
    initial: Partial<ViewInputs>,
    private readonly onView: () => void,
  ) {
    this.rule = viewRule(video, area);
    this.state = { ratio: 0, visible: true, focused: true, prerendering: false, playing: false, ...initial };
    this.update();
  }

  /** True once the view has been counted. */
  get viewed(): boolean {
    return this.seen;
  }

  /** True while a continuous run is under way (for tests and debugging). */
  get counting(): boolean {
    return this.since !== null && !this.done;
  }

  /** Feeds changed inputs; the others keep their last value. */
  set(change: Partial<ViewInputs>): void {
    if (this.done) return;
    Object.assign(this.state, change);
    this.update();
  }

  /** Stops measuring; onView will not be called after this. */
  destroy(): void {
    this.stop();
    this.done = true;
  }

  private qualifies(): boolean {
    const s = this.state;
    return s.visible && s.focused && !s.prerendering && s.ratio >= this.rule.ratio && (!this.video || s.playing);
  }

  private update(): void {
    if (this.done) return;
    if (!this.qualifies()) {
      this.stop();
      return;
    }
    if (this.since === null) this.since = this.clock.now();
    this.check();
  }

  private check(): void {
    if (this.since === null || this.done) return;
    const left = this.rule.ms - (this.clock.now() - this.since);
    if (left <= 0) {
      this.stop();
      this.done = this.seen = true;
      this.onView();
    } else if (this.timer === null) {
      // Timers may fire early or late: on firing, check again against the clock.
      this.timer = this.clock.setTimer(() => {
        this.timer = null;
        this.check();
      }, left);
    }
  }

  private stop(): void {
    this.since = null;
    if (this.timer !== null) {
      this.clock.clearTimer(this.timer);
      this.timer = null;
    }
  }
}
