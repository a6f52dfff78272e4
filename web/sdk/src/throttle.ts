/** A slot is refreshed at most once every 30 seconds. */
export const REFRESH_MIN_MS = 30000;

/**
 * Milliseconds to wait before a slot last requested at `last` may be requested again:
 * 0 when it may be now (or was never requested).
 */
export function refreshWait(last: number | null, now: number, min: number = REFRESH_MIN_MS): number {
  return last === null ? 0 : Math.max(0, last + min - now);
}
