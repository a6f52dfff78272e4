/**
 * The publisher SDK: slots, decisions, rendering, events and the `window.adescrow` global.
 * Everything reaches the page through the `win` it is given, so tests run it against a
 * small fake window.
 */

import { Beacons, joinUrl, type EventKind, type Transport } from './beacon';
import { FILL_PATH, fillBody, parseFill, type Ad } from './fill';
import { loadMedia, renderCreative } from './render';
import { refreshWait, REFRESH_MIN_MS } from './throttle';
import { ViewTracker, type Scheduler } from './viewability';

export const VERSION = '0.1.0';

/** Attributes of a declared slot. */
export const ATTR_SLOT = 'data-adescrow-slot';
export const ATTR_SIZE = 'data-adescrow-size';
export const ATTR_FALLBACK = 'data-adescrow-fallback';

export type Size = [number, number];

export interface Slot {
  /** The element's id (one is given to elements without). */
  readonly id: string;
  readonly element: HTMLElement;
  /** The placement slug sent to /v1/fill. */
  readonly placement: string;
  readonly size: Size;
  /** HTML shown when there is no ad; null collapses the slot instead. */
  readonly fallback: string | null;
}

export interface SlotOptions {
  placement: string;
  size: Size;
  fallback?: string | null;
}

export interface Config {
  /** The hoster node's base URL: /v1/fill and /v1/e are under it. */
  node: string;
  /** The witness node's base URL, which gets a copy of every event; null for none. */
  witness: string | null;
  /** Ask for a slot's ad only once it is within lazyMargin px of the viewport. */
  lazyLoad: boolean;
  lazyMargin: number;
  /** The page's consent check; null for none. No ad unless it answers true in time. */
  consent: (() => Promise<boolean> | boolean) | null;
  consentTimeout: number;
  /** A pseudonymous viewer id chosen by the publisher, passed on in decision requests. */
  viewer: string | null;
  /** How long a decision request may take before the slot counts as empty. */
  fillTimeout: number;
}

export interface SlotEvent {
  slot: Slot;
}
export interface RenderEndedEvent extends SlotEvent {
  isEmpty: boolean;
  size: Size | null;
  /** The ad's ticketId when not empty. */
  ticketId: string | null;
}
export interface VisibilityEvent extends SlotEvent {
  inViewPercentage: number;
}
export interface RefreshIgnoredEvent extends SlotEvent {
  /** Milliseconds until the slot may be refreshed. */
  retryIn: number;
}
export interface EventMap {
  slotRequested: SlotEvent;
  slotRenderEnded: RenderEndedEvent;
  impressionViewable: SlotEvent;
  slotVisibilityChanged: VisibilityEvent;
  slotRefreshIgnored: RefreshIgnoredEvent;
}
export type EventName = keyof EventMap;
type Listener = (e: never) => void;

export type SlotRef = Slot | string;

export interface Api {
  readonly version: string;
  readonly __loaded: true;
  /** Resolves once the SDK is initialised; never rejects. */
  readonly ready: Promise<Api>;
  /** The command queue: push(fn) runs fn now that the SDK is ready. */
  cmd: { push(...fns: Array<() => void>): number };
  defineSlot(elementOrId: HTMLElement | string, options: SlotOptions): Slot | null;
  display(slot: SlotRef): void;
  refresh(slots?: SlotRef[]): void;
  destroySlots(slots?: SlotRef[]): boolean;
  getSlots(): Slot[];
  setConfig(config: Partial<Config>): void;
  getConfig(): Config;
  addEventListener<K extends EventName>(name: K, fn: (e: EventMap[K]) => void): void;
  removeEventListener<K extends EventName>(name: K, fn: (e: EventMap[K]) => void): void;
}

/** The window the SDK runs in: the real one, or a fake in tests. */
export type Win = Window & typeof globalThis;

interface State {
  slot: Slot;
  displayed: boolean;
  /** Lazy loading: the slot has come near the viewport. */
  near: boolean;
  /** When its ad was last requested (clock ms). */
  last: number | null;
  /** Bumped by every request and by teardown: answers for an older generation are dropped. */
  gen: number;
  tracker: ViewTracker | null;
  creative: Element | null;
  /** The inline styles the slot had before the SDK sized it, restored by destroySlots. */
  css: string;
}

const TEXT_PLAIN = { 'Content-Type': 'text/plain' };
const THRESHOLDS = [0, 0.25, 0.3, 0.5, 0.75, 1];

/** "300x250" -> [300, 250] */
export function parseSize(v: string | null): Size | null {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(v || '');
  return m && +m[1] > 0 && +m[2] > 0 ? [+m[1], +m[2]] : null;
}

/** Settings from the script tag: data-node (default: the origin the script came from), data-witness, data-viewer, data-lazy. */
export function scriptConfig(script: HTMLScriptElement | null, pageUrl: string): Partial<Config> {
  if (!script) return {};
  const get = (n: string) => script.getAttribute(n);
  const cfg: Partial<Config> = {};
  let node = get('data-node');
  const src = get('src');
  if (!node && src) {
    try {
      node = new URL(src, pageUrl).origin;
    } catch (_) {
      node = null;
    }
  }
  if (node) cfg.node = node;
  if (get('data-witness')) cfg.witness = get('data-witness');
  if (get('data-viewer')) cfg.viewer = get('data-viewer');
  const lazy = get('data-lazy');
  if (lazy !== null) cfg.lazyLoad = lazy !== 'false';
  return cfg;
}

/**
 * Installs the SDK on `win.adescrow` unless an instance is there already (a second copy
 * of the script then does nothing and the first instance stays). Commands queued on
 * `adescrow.cmd` before load run now, in order.
 */
export function boot(win: Win, script: HTMLScriptElement | null): Api {
  const g = win as unknown as { adescrow?: Record<string, unknown> };
  const prior = g.adescrow;
  if (prior && prior.__loaded) return prior as unknown as Api;
  const host: Record<string, unknown> = prior && typeof prior === 'object' ? prior : {};
  const queue: unknown[] = Array.isArray(host.cmd) ? (host.cmd as unknown[]) : [];
  const log = win.console;
  let resolveReady: (a: Api) => void = () => undefined;
  // Keep the page's object (and its cmd array) so references taken before load stay good.
  const api = Object.assign(host, {
    version: VERSION,
    __loaded: true as const,
    ready: new Promise<Api>((r) => (resolveReady = r)),
    cmd: queue,
  }) as unknown as Api;
  g.adescrow = host;
  const run = (fn: unknown) => {
    try {
      if (typeof fn === 'function') fn();
    } catch (e) {
      log.error('adescrow: command failed', e);
    }
  };
  try {
    const { start, ...methods } = createSdk(win, scriptConfig(script, win.location.href));
    Object.assign(host, methods);
    const pending = queue.splice(0, queue.length);
    (queue as unknown as Api['cmd']).push = (...fns: Array<() => void>) => {
      fns.forEach(run);
      return 0;
    };
    pending.forEach(run);
    start();
  } catch (e) {
    // Whatever went wrong, `ready` still resolves (never rejects) and a second copy of the
    // script does not try again.
    log.error('adescrow: failed to start', e);
  }
  resolveReady(api);
  return api;
}

export function createSdk(win: Win, initial: Partial<Config>) {
  const doc = win.document;
  const nav = win.navigator;
  const log = win.console;
  const perf = win.performance;
  const now = () => (perf && perf.now ? perf.now() : Date.now());
  const clock: Scheduler = {
    now,
    setTimer: (fn, ms) => win.setTimeout(fn, ms),
    clearTimer: (h) => win.clearTimeout(h as number),
  };
  const warn = (msg: string) => log.warn('adescrow: ' + msg);

  const cfg: Config = {
    node: '',
    witness: null,
    lazyLoad: false,
    lazyMargin: 300,
    consent: null,
    consentTimeout: 1000,
    viewer: null,
    fillTimeout: 5000,
  };

  const transport: Transport = {
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    online: () => !nav || nav.onLine !== false,
    post:
      typeof win.fetch === 'function'
        ? (url, body) =>
            win.fetch(url, {
              method: 'POST',
              body,
              keepalive: true,
              mode: 'no-cors',
              credentials: 'omit',
              headers: TEXT_PLAIN,
            })
        : undefined,
    beacon:
      nav && typeof nav.sendBeacon === 'function'
        ? (url, body) =>
            nav.sendBeacon(url, typeof win.Blob === 'function' ? new win.Blob([body], { type: 'text/plain' }) : body)
        : undefined,
  };
  const beacons = new Beacons(transport);

  // ---- events -------------------------------------------------------------------------
  const listeners: { [name: string]: Listener[] } = {};
  function emit<K extends EventName>(name: K, detail: EventMap[K]): void {
    for (const fn of (listeners[name] || []).slice()) {
      try {
        (fn as (e: EventMap[K]) => void)(detail);
      } catch (e) {
        log.error('adescrow: ' + name + ' listener failed', e);
      }
    }
  }

  // ---- page state: visibility, focus, prerendering ---------------------------------------
  const isVisible = () => doc.visibilityState === 'visible';
  const hasFocus = () => (typeof doc.hasFocus === 'function' ? doc.hasFocus() : true);
  const isPrerendering = () => !!(doc as Document & { prerendering?: boolean }).prerendering;
  let visible = isVisible();
  let focused = hasFocus();
  let prerendering = isPrerendering();

  const states: State[] = [];
  const pageChanged = () => {
    for (const st of states) if (st.tracker) st.tracker.set({ visible, focused, prerendering });
  };
  const activated = new Promise<void>((resolve) => {
    if (!prerendering) return resolve();
    doc.addEventListener('prerenderingchange', () => {
      prerendering = isPrerendering();
      visible = isVisible();
      focused = hasFocus();
      pageChanged();
      resolve();
    });
  });
  doc.addEventListener('visibilitychange', () => {
    visible = isVisible();
    focused = hasFocus();
    pageChanged();
    if (!visible) beacons.flushOnHide();
  });
  win.addEventListener('focus', () => {
    focused = true;
    pageChanged();
  });
  win.addEventListener('blur', () => {
    focused = false;
    pageChanged();
  });
  win.addEventListener('pagehide', () => beacons.flushOnHide());
  win.addEventListener('online', () => beacons.online());

  const report = (ticket: string, event: EventKind) => {
    if (!prerendering) beacons.send(ticket, event);
  };

  // ---- intersection observers ---------------------------------------------------------------
  const IO = win.IntersectionObserver;
  const byCreative = new Map<Element, State>();
  const viewIO =
    typeof IO === 'function'
      ? new IO(
          (entries) => {
            for (const e of entries) {
              const st = byCreative.get(e.target);
              if (!st || !st.tracker) continue;
              const ratio = e.isIntersecting ? e.intersectionRatio : 0;
              st.tracker.set({ ratio });
              emit('slotVisibilityChanged', { slot: st.slot, inViewPercentage: Math.round(ratio * 100) });
            }
          },
          { threshold: THRESHOLDS },
        )
      : null;
  const waiting = new Map<Element, State>();
  let lazyIO: IntersectionObserver | null = null;
  const lazyObserver = () =>
    (lazyIO =
      lazyIO ||
      new IO(
        (entries) => {
          for (const e of entries) {
            const st = waiting.get(e.target);
            if (!st || !e.isIntersecting) continue;
            waiting.delete(e.target);
            lazyIO!.unobserve(e.target);
            st.near = true;
            request(st);
          }
        },
        { rootMargin: cfg.lazyMargin + 'px 0px' },
      ));

  // ---- slots ----------------------------------------------------------------------------
  let seq = 0;
  const find = (ref: SlotRef | State): State | undefined => {
    for (const st of states) {
      if (st === ref || st.slot === ref || (typeof ref === 'string' && st.slot.id === ref)) return st;
    }
    return undefined;
  };
  const pick = (refs?: SlotRef[]): State[] => {
    if (!refs) return states.slice();
    const out: State[] = [];
    for (const r of refs) {
      const st = find(r);
      if (st) out.push(st);
      else warn('no slot ' + String(r));
    }
    return out;
  };

  function defineSlot(elementOrId: HTMLElement | string, o: SlotOptions): Slot | null {
    const el = typeof elementOrId === 'string' ? doc.getElementById(elementOrId) : elementOrId;
    if (!el) {
      warn('defineSlot: no element ' + String(elementOrId));
      return null;
    }
    for (const st of states) if (st.slot.element === el) return st.slot;
    const size = o && Array.isArray(o.size) ? parseSize(o.size.join('x')) : null;
    if (!o || typeof o.placement !== 'string' || !o.placement || !size) {
      warn('defineSlot: a slot needs a placement and a size [width, height]');
      return null;
    }
    if (!el.id) el.id = 'adescrow-slot-' + ++seq;
    const slot: Slot = {
      id: el.id,
      element: el,
      placement: o.placement,
      size,
      fallback: typeof o.fallback === 'string' ? o.fallback : null,
    };
    states.push({ slot, displayed: false, near: false, last: null, gen: 0, tracker: null, creative: null, css: el.style.cssText });
    return slot;
  }

  /** Sizes the slot's box to its declared size before anything is requested: no layout shift. */
  function reserve(st: State): void {
    const s = st.slot.element.style;
    s.display = s.display === 'none' ? '' : s.display;
    s.width = st.slot.size[0] + 'px';
    s.height = st.slot.size[1] + 'px';
    s.overflow = 'hidden';
  }

  function display(ref: SlotRef): void {
    const st = find(ref);
    if (!st) return warn('display: no slot ' + String(ref));
    if (st.displayed) return;
    st.displayed = true;
    reserve(st);
    request(st);
  }

  /** Requests now, or (lazy loading) once the slot comes near the viewport. */
  function request(st: State): void {
    if (!st.displayed || find(st) !== st) return;
    if (cfg.lazyLoad && viewIO && !st.near) {
      waiting.set(st.slot.element, st);
      lazyObserver().observe(st.slot.element);
      return;
    }
    void load(st);
  }

  async function load(st: State): Promise<void> {
    const gen = ++st.gen;
    st.last = now();
    reserve(st);
    await activated;
    const ok = await consented();
    if (gen !== st.gen) return;
    const ad = ok ? await fill(st.slot) : null;
    if (gen !== st.gen) return;
    if (ad) show(st, ad, gen);
    else empty(st);
  }

  /** The page's consent answer, false when it says no, fails or takes too long. */
  function consented(): Promise<boolean> {
    const ask = cfg.consent;
    if (!ask) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = win.setTimeout(() => resolve(false), cfg.consentTimeout);
      const done = (v: unknown) => {
        win.clearTimeout(t);
        resolve(v === true);
      };
      try {
        Promise.resolve(ask()).then(done, () => done(false));
      } catch (_) {
        done(false);
      }
    });
  }

  async function fill(slot: Slot): Promise<Ad | null> {
    if (!cfg.node) {
      warn('no node configured (data-node or setConfig({node}))');
      return null;
    }
    if (typeof win.fetch !== 'function') return null;
    emit('slotRequested', { slot });
    const ctl = typeof win.AbortController === 'function' ? new win.AbortController() : null;
    const timer = win.setTimeout(() => ctl && ctl.abort(), cfg.fillTimeout);
    try {
      const res = await win.fetch(joinUrl(cfg.node, FILL_PATH), {
        method: 'POST',
        body: fillBody(slot.placement, cfg.viewer, win.location.href),
        headers: TEXT_PLAIN,
        credentials: 'omit',
        signal: ctl ? ctl.signal : undefined,
      });
      return res.ok ? parseFill(await res.json()) : null;
    } catch (_) {
      return null;
    } finally {
      win.clearTimeout(timer);
    }
  }

  /** Drops the current creative and stops measuring it. */
  function teardown(st: State): void {
    if (st.tracker) st.tracker.destroy();
    st.tracker = null;
    if (st.creative) {
      if (viewIO) viewIO.unobserve(st.creative);
      byCreative.delete(st.creative);
    }
    st.creative = null;
    st.slot.element.textContent = '';
  }

  function show(st: State, ad: Ad, gen: number): void {
    const { slot } = st;
    const [w, h] = slot.size;
    const c = ad.creative;
    const video = c.kind === 'video';
    teardown(st);
    reserve(st);
    const { root, media } = renderCreative(doc, c);
    let playing = false;
    const current = () => gen === st.gen;
    // Rendered: the impression, then viewability measurement starts.
    const rendered = () => {
      if (!current() || st.tracker) return;
      st.tracker = new ViewTracker(clock, video, w * h, { visible, focused, prerendering, playing }, () => {
        report(ad.ticket, 'view');
        emit('impressionViewable', { slot });
      });
      report(ad.ticket, 'impression');
      emit('slotRenderEnded', { slot, isEmpty: false, size: [w, h], ticketId: ad.ticketId || null });
      if (viewIO) {
        byCreative.set(root, st);
        viewIO.observe(root);
      }
    };
    const click = () => {
      if (current() && st.tracker) report(ad.ticket, 'click');
    };
    root.addEventListener('click', click);
    root.addEventListener('auxclick', click);
    st.creative = root;
    if (media) {
      media.addEventListener(video ? 'loadeddata' : 'load', rendered);
      media.addEventListener('error', () => current() && empty(st));
      if (video) {
        const setPlaying = (p: boolean) => () => {
          playing = p;
          if (current() && st.tracker) st.tracker.set({ playing });
        };
        media.addEventListener('playing', setPlaying(true));
        for (const ev of ['pause', 'ended', 'waiting', 'emptied']) media.addEventListener(ev, setPlaying(false));
      }
    }
    slot.element.appendChild(root);
    if (media) loadMedia(media, c.mediaUrl as string);
    else rendered();
  }

  /** No ad: the fallback HTML in the reserved box, or the slot collapses. */
  function empty(st: State): void {
    teardown(st);
    const { slot } = st;
    const s = slot.element.style;
    if (slot.fallback !== null) {
      // The publisher's own HTML, never a creative's.
      slot.element.innerHTML = slot.fallback;
    } else {
      s.height = '0';
      s.display = 'none';
    }
    emit('slotRenderEnded', { slot, isEmpty: true, size: null, ticketId: null });
  }

  function refresh(refs?: SlotRef[]): void {
    for (const st of pick(refs)) {
      if (!st.displayed) {
        display(st.slot);
        continue;
      }
      const retryIn = refreshWait(st.last, now());
      if (retryIn > 0) {
        warn(
          'refresh of ' + st.slot.id + ' ignored: at most one every ' + REFRESH_MIN_MS / 1000 + ' s (' + Math.ceil(retryIn / 1000) + ' s to go)',
        );
        emit('slotRefreshIgnored', { slot: st.slot, retryIn });
        continue;
      }
      request(st);
    }
  }

  function destroySlots(refs?: SlotRef[]): boolean {
    const list = pick(refs);
    for (const st of list) {
      st.gen++;
      teardown(st);
      const el = st.slot.element;
      if (waiting.delete(el) && lazyIO) lazyIO.unobserve(el);
      el.style.cssText = st.css;
      states.splice(states.indexOf(st), 1);
    }
    return list.length > 0;
  }

  /** Defines and displays the slots declared with data-adescrow-slot that are new. */
  function scan(): void {
    const els = doc.querySelectorAll<HTMLElement>('[' + ATTR_SLOT + ']');
    for (let i = 0; i < els.length; i++) {
      const el = els[i];
      if (states.some((st) => st.slot.element === el)) continue;
      const size = parseSize(el.getAttribute(ATTR_SIZE));
      if (!size) {
        warn(ATTR_SIZE + ' missing or not WIDTHxHEIGHT on #' + (el.id || el.getAttribute(ATTR_SLOT)));
        continue;
      }
      const slot = defineSlot(el, {
        placement: el.getAttribute(ATTR_SLOT) || '',
        size,
        fallback: el.getAttribute(ATTR_FALLBACK),
      });
      if (slot) display(slot);
    }
  }

  function setConfig(c: Partial<Config>): void {
    if (!c || typeof c !== 'object') return;
    const t = cfg as unknown as Record<string, unknown>;
    for (const k of Object.keys(cfg)) {
      if (k in c) t[k] = (c as Record<string, unknown>)[k];
    }
    beacons.setDestinations([cfg.node, cfg.witness]);
  }

  setConfig(initial);

  return {
    defineSlot,
    display,
    refresh,
    destroySlots,
    getSlots: () => states.map((st) => st.slot),
    setConfig,
    getConfig: (): Config => ({ ...cfg }),
    addEventListener<K extends EventName>(name: K, fn: (e: EventMap[K]) => void): void {
      (listeners[name] = listeners[name] || []).push(fn as Listener);
    },
    removeEventListener<K extends EventName>(name: K, fn: (e: EventMap[K]) => void): void {
      const l = listeners[name] || [];
      const i = l.indexOf(fn as Listener);
      if (i >= 0) l.splice(i, 1);
    },
    /** Runs the declared slots (now, and again once the document has been parsed). */
    start(): void {
      scan();
      if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', scan);
    },
  };
}
