/**
 * Event beacons: each (ticket, event) goes at most once per page to each destination
 * (the hoster node and, when configured, the witness node), as
 *
 *   POST {base}/v1/e   Content-Type: text/plain   {"events":[{"ticket":"…","event":"view"}, …]}
 *
 * Events queued in the same tick share one request. Every destination has its own queue,
 * so one that is down never holds back the other. While offline (navigator.onLine false,
 * or a request that fails) events stay queued, bounded, oldest dropped first, and are
 * retried in order with exponential backoff and at once on the `online` event. Nothing is
 * persisted across pages. No DOM here: the transport and timers are injected.
 */

import type { Scheduler } from './viewability';

export type EventKind = 'impression' | 'view' | 'click';

export interface BeaconEvent {
  ticket: string;
  event: EventKind;
}

export interface Transport extends Pick<Scheduler, 'setTimer' | 'clearTimer'> {
  /**
   * Starts a POST of `body` (a fetch with keepalive). The promise settles when the request
   * was delivered (resolves) or failed at the network level (rejects). Absent, or throwing
   * synchronously, means: use `beacon` instead.
   */
  post?: (url: string, body: string) => Promise<unknown>;
  /** navigator.sendBeacon: true when the browser accepted the body for delivery. */
  beacon?: (url: string, body: string) => boolean;
  /** navigator.onLine */
  online(): boolean;
}

/** Most events buffered per destination; past it the oldest are dropped. */
export const MAX_QUEUE = 500;
/** Most events in one request (sendBeacon and keepalive bodies are limited to 64 KiB). */
export const MAX_BATCH = 20;
export const MIN_BACKOFF = 1000;
export const MAX_BACKOFF = 60000;

export const EVENTS_PATH = '/v1/e';

interface Destination {
  url: string;
  /** (event, ticket) keys ever queued here: the per-page dedupe. */
  seen: Set<string>;
  /** Not yet delivered and not in flight, oldest first. */
  queue: BeaconEvent[];
  busy: boolean;
  backoff: number;
  timer: unknown;
}

/** `base` without trailing slashes, then `path`. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

export class Beacons {
  private dests: Destination[] = [];

  constructor(private readonly t: Transport) {}

  /** The node base URLs events go to (empty and repeated ones are skipped). */
  setDestinations(bases: Array<string | null | undefined>): void {
    const urls: string[] = [];
    for (const b of bases) {
      const u = b ? joinUrl(b, EVENTS_PATH) : '';
      if (u && urls.indexOf(u) < 0) urls.push(u);
    }
    const old = this.dests;
    this.dests = urls.map(
      (url) =>
        old.filter((d) => d.url === url)[0] || {
          url,
          seen: new Set<string>(),
          queue: [],
          busy: false,
          backoff: 0,
          timer: null,
        },
    );
    for (const d of old) if (this.dests.indexOf(d) < 0) this.cancel(d);
  }

  /** Queues one event for every destination that has not had it yet. */
  send(ticket: string, event: EventKind): void {
    const key = event + ' ' + ticket;
    for (const d of this.dests) {
      if (d.seen.has(key)) continue;
      d.seen.add(key);
      d.queue.push({ ticket, event });
      trim(d);
      // A zero-delay timer batches the events of one tick into one request.
      if (d.timer === null && !d.busy) d.timer = this.t.setTimer(() => this.run(d), 0);
    }
  }

  /** Events waiting (not in flight) for the destination with this base, for tests. */
  pending(base: string): BeaconEvent[] {
    const url = joinUrl(base, EVENTS_PATH);
    const d = this.dests.filter((x) => x.url === url)[0];
    return d ? d.queue.slice() : [];
  }

  /** The browser says it is back online: retry everything now. */
  online(): void {
    for (const d of this.dests) {
      this.cancel(d);
      d.backoff = 0;
      this.flush(d);
    }
  }

  /**
   * The page is being hidden or unloaded: hand what is queued to sendBeacon, which the
   * browser delivers even after the page is gone. Requests in flight are keepalive fetches
   * and finish by themselves.
   */
  flushOnHide(): void {
    if (!this.t.online()) return;
    for (const d of this.dests) {
      while (d.queue.length) {
        const batch = d.queue.slice(0, MAX_BATCH);
        if (!this.beacon(d.url, batch)) break;
        d.queue.splice(0, batch.length);
      }
    }
  }

  private run(d: Destination): void {
    d.timer = null;
    this.flush(d);
  }

  private flush(d: Destination): void {
    if (d.busy || d.timer !== null || !d.queue.length || this.dests.indexOf(d) < 0) return;
    if (!this.t.online()) {
      this.retryLater(d);
      return;
    }
    const batch = d.queue.splice(0, MAX_BATCH);
    const body = encode(batch);
    let p: Promise<unknown> | undefined;
    try {
      p = this.t.post && this.t.post(d.url, body);
    } catch (_) {
      p = undefined;
    }
    if (!p) {
      if (this.beacon(d.url, batch)) {
        d.backoff = 0;
        this.flush(d);
      } else {
        this.failed(d, batch);
      }
      return;
    }
    d.busy = true;
    p.then(
      () => {
        d.busy = false;
        d.backoff = 0;
        this.flush(d);
      },
      () => {
        d.busy = false;
        this.failed(d, batch);
      },
    );
  }

  private beacon(url: string, batch: BeaconEvent[]): boolean {
    try {
      return !!this.t.beacon && this.t.beacon(url, encode(batch));
    } catch (_) {
      return false;
    }
  }

  /** Puts a batch that did not go back at the head of the queue and retries later. */
  private failed(d: Destination, batch: BeaconEvent[]): void {
    d.queue = batch.concat(d.queue);
    trim(d);
    this.retryLater(d);
  }

  private retryLater(d: Destination): void {
    if (d.timer !== null) return;
    d.backoff = Math.min(MAX_BACKOFF, Math.max(MIN_BACKOFF, d.backoff * 2));
    d.timer = this.t.setTimer(() => this.run(d), d.backoff);
  }

  private cancel(d: Destination): void {
    if (d.timer !== null) this.t.clearTimer(d.timer);
    d.timer = null;
  }
}

function trim(d: Destination): void {
  if (d.queue.length > MAX_QUEUE) d.queue.splice(0, d.queue.length - MAX_QUEUE);
}

/** The request body; exactly these two keys per event. */
export function encode(events: BeaconEvent[]): string {
  return JSON.stringify({ events: events.map((e) => ({ ticket: e.ticket, event: e.event })) });
}
