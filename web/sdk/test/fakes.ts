// Test doubles: a fake clock with timers, and a tiny fake of the few DOM APIs the SDK uses
// (elements, document, window, IntersectionObserver, fetch, sendBeacon).
import type { Win } from '../src/sdk';

export class FakeClock {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): number => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn });
    return id;
  };
  clearTimer = (h: unknown): void => {
    this.timers.delete(h as number);
  };

  /** Moves time forward, running each timer at its due time, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let runs = 0; ; runs++) {
      if (runs > 100000) throw new Error('FakeClock: timers keep re-arming at the same instant');
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

/** Lets pending promise callbacks run (the SDK's timers are on the fake clock). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

type Handler = (e: Record<string, unknown>) => void;

export class FakeTarget {
  listeners: Record<string, Handler[]> = {};
  addEventListener(type: string, fn: Handler): void {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  removeEventListener(type: string, fn: Handler): void {
    const l = this.listeners[type] || [];
    if (l.indexOf(fn) >= 0) l.splice(l.indexOf(fn), 1);
  }
  dispatch(type: string, e: Record<string, unknown> = {}): void {
    for (const fn of (this.listeners[type] || []).slice()) fn({ type, target: this, ...e });
  }
  listenerCount(): number {
    return Object.keys(this.listeners).reduce((n, k) => n + this.listeners[k].length, 0);
  }
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
const camel = (s: string) => s.trim().replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** A CSSStyleDeclaration stand-in: properties ('' when unset) and a cssText over them all. */
export function makeStyle(): Record<string, string> {
  const s: Record<string, string> = new Proxy({} as Record<string, string>, {
    get: (t, k) => (typeof k === 'string' && !(k in t) ? '' : Reflect.get(t, k)),
  });
  Object.defineProperty(s, 'cssText', {
    enumerable: false,
    get: () =>
      Object.keys(s)
        .filter((k) => s[k] !== '')
        .map((k) => kebab(k) + ': ' + s[k] + ';')
        .join(' '),
    set: (v: string) => {
      for (const k of Object.keys(s)) delete s[k];
      for (const decl of String(v).split(';')) {
        const i = decl.indexOf(':');
        if (i > 0) s[camel(decl.slice(0, i))] = decl.slice(i + 1).trim();
      }
    },
  });
  return s;
}

/** Counts innerHTML writes on every fake element: creatives must never use it. */
export const htmlWrites: Array<{ el: FakeElement; html: string }> = [];

export class FakeElement extends FakeTarget {
  [prop: string]: unknown;
  readonly tagName: string;
  attrs = new Map<string, string>();
  style = makeStyle();
  children: FakeElement[] = [];
  parent: FakeElement | null = null;
  private text = '';
  html = '';

  constructor(tag: string) {
    super();
    this.tagName = tag.toUpperCase();
  }
  get id(): string {
    return this.attrs.get('id') || '';
  }
  set id(v: string) {
    this.attrs.set('id', v);
  }
  setAttribute(n: string, v: string): void {
    this.attrs.set(n, String(v));
  }
  getAttribute(n: string): string | null {
    const v = this.attrs.get(n);
    return v === undefined ? null : v;
  }
  hasAttribute(n: string): boolean {
    return this.attrs.has(n);
  }
  appendChild(c: FakeElement): FakeElement {
    c.parent = this;
    this.children.push(c);
    return c;
  }
  get firstChild(): FakeElement | null {
    return this.children[0] || null;
  }
  get textContent(): string {
    return this.text + this.html + this.children.map((c) => c.textContent).join('');
  }
  set textContent(v: string) {
    for (const c of this.children) c.parent = null;
    this.children = [];
    this.html = '';
    this.text = String(v);
  }
  get innerHTML(): string {
    return this.html;
  }
  set innerHTML(v: string) {
    this.textContent = '';
    this.html = String(v);
    htmlWrites.push({ el: this, html: this.html });
  }
  play(): Promise<void> {
    return Promise.resolve();
  }
  /** This element and everything under it, depth first. */
  all(): FakeElement[] {
    return [this as FakeElement].concat(...this.children.map((c) => c.all()));
  }
  find(tag: string): FakeElement | undefined {
    return this.all().filter((e) => e.tagName === tag.toUpperCase())[0];
  }
}

export class FakeDocument extends FakeTarget {
  body = new FakeElement('body');
  visibilityState: 'visible' | 'hidden' = 'visible';
  prerendering = false;
  focused = true;
  readyState = 'complete';
  currentScript: FakeElement | null = null;
  hasFocus(): boolean {
    return this.focused;
  }
  createElement(tag: string): FakeElement {
    return new FakeElement(tag);
  }
  getElementById(id: string): FakeElement | null {
    return this.body.all().filter((e) => e.id === id)[0] || null;
  }
  /** Only the `[attribute]` selector, the one the SDK uses. */
  querySelectorAll(sel: string): FakeElement[] {
    const m = /^\[([\w-]+)\]$/.exec(sel);
    if (!m) throw new Error('fake querySelectorAll: unsupported selector ' + sel);
    return this.body.all().filter((e) => e.hasAttribute(m[1]));
  }
}

export class FakeIO {
  targets = new Set<FakeElement>();
  constructor(
    readonly cb: (entries: unknown[], io: FakeIO) => void,
    readonly opts: { threshold?: number[]; rootMargin?: string } = {},
  ) {}
  observe(t: FakeElement): void {
    this.targets.add(t);
  }
  unobserve(t: FakeElement): void {
    this.targets.delete(t);
  }
  disconnect(): void {
    this.targets.clear();
  }
  /** Reports `ratio` of `target` in view, as the browser would on a threshold crossing. */
  fire(target: FakeElement, ratio: number): void {
    if (!this.targets.has(target)) return;
    this.cb([{ target, intersectionRatio: ratio, isIntersecting: ratio > 0 }], this);
  }
}

export interface FetchCall {
  url: string;
  init: { method?: string; body?: string; headers?: Record<string, string>; keepalive?: boolean; mode?: string; credentials?: string };
}

export interface FakeResponse {
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}

export const json = (body: unknown, status = 200): FakeResponse => ({
  ok: status >= 200 && status < 300,
  status,
  json: async () => body,
});

export function ad(ticket: string, creative: Partial<Record<string, unknown>> = {}): unknown {
  return {
    ads: [
      {
        ticket,
        ticketId: 'id-' + ticket,
        expiresAt: '2030-01-01T00:00:00Z',
        creative: {
          kind: 'text',
          title: 'Title ' + ticket,
          text: 'Text ' + ticket,
          mediaUrl: null,
          clickUrl: 'https://advertiser.example/landing',
          ...creative,
        },
      },
    ],
    reason: null,
  };
}

export interface FakePage {
  win: Win;
  raw: FakeWindow;
  doc: FakeDocument;
  clock: FakeClock;
  fetches: FetchCall[];
  beacons: Array<{ url: string; body: string }>;
  warnings: string[];
  errors: unknown[];
  ios: FakeIO[];
  /** The IntersectionObserver with thresholds (viewability), not the lazy-load one. */
  viewIO(): FakeIO;
  lazyIO(): FakeIO | undefined;
  /** Answers /v1/fill (default: a text ad with ticket t1, t2, … per request). */
  fill: (url: string, call: FetchCall) => Promise<FakeResponse>;
  /** Answers /v1/e (default: delivered). */
  events: (url: string, call: FetchCall) => Promise<FakeResponse>;
  /** Events sent by fetch or sendBeacon to `base`/v1/e, flattened, in order. */
  sent(base: string): string[];
  /** Creates <div id=…> in the body, with attributes. */
  slot(id: string, attrs?: Record<string, string>): FakeElement;
}

export type FakeWindow = FakeTarget & Record<string, unknown>;

export function fakePage(opts: { online?: boolean } = {}): FakePage {
  const clock = new FakeClock();
  const doc = new FakeDocument();
  const raw = new FakeTarget() as FakeWindow;
  let n = 0;
  const page: FakePage = {
    win: raw as unknown as Win,
    raw,
    doc,
    clock,
    fetches: [],
    beacons: [],
    warnings: [],
    errors: [],
    ios: [],
    viewIO: () => page.ios.filter((io) => io.opts.threshold)[0],
    lazyIO: () => page.ios.filter((io) => !io.opts.threshold)[0],
    fill: async () => json(ad('t' + ++n)),
    events: async () => json(null),
    sent(base: string): string[] {
      const url = base + '/v1/e';
      const bodies = page.fetches
        .filter((f) => f.url === url)
        .map((f) => f.init.body as string)
        .concat(page.beacons.filter((b) => b.url === url).map((b) => b.body));
      const out: string[] = [];
      for (const b of bodies) for (const e of JSON.parse(b).events) out.push(e.event + ':' + e.ticket);
      return out;
    },
    slot(id: string, attrs: Record<string, string> = {}): FakeElement {
      const el = new FakeElement('div');
      el.id = id;
      for (const k of Object.keys(attrs)) el.setAttribute(k, attrs[k]);
      doc.body.appendChild(el);
      return el;
    },
  };
  const navigator = {
    onLine: opts.online !== false,
    sendBeacon: (url: string, body: unknown) => {
      page.beacons.push({ url, body: typeof body === 'string' ? body : String((body as { text?: string }).text) });
      return true;
    },
  };
  class IO extends FakeIO {
    constructor(cb: (entries: unknown[], io: FakeIO) => void, o?: { threshold?: number[]; rootMargin?: string }) {
      super(cb, o);
      page.ios.push(this);
    }
  }
  class TextBlob {
    text: string;
    constructor(parts: string[]) {
      this.text = parts.join('');
    }
  }
  Object.assign(raw, {
    document: doc,
    navigator,
    location: { href: 'https://publisher.example/article?id=1' },
    console: {
      warn: (m: string) => page.warnings.push(m),
      error: (...a: unknown[]) => page.errors.push(a),
      log: () => undefined,
    },
    performance: { now: clock.now },
    setTimeout: clock.setTimer,
    clearTimeout: clock.clearTimer,
    IntersectionObserver: IO,
    AbortController,
    Blob: TextBlob,
    fetch: (url: string, init: FetchCall['init']) => {
      const call = { url, init };
      page.fetches.push(call);
      return /\/v1\/fill$/.test(url) ? page.fill(url, call) : page.events(url, call);
    },
  });
  return page;
}

/** The /v1/fill calls made so far. */
export const fills = (p: FakePage): FetchCall[] => p.fetches.filter((f) => /\/v1\/fill$/.test(f.url));
