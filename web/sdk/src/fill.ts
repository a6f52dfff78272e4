/**
 * The decision request and its answer.
 *
 *   POST {node}/v1/fill   Content-Type: text/plain
 *   {"placement":"sidebar","viewer":"vw_…","pageUrl":"https://…"}      (viewer only when set)
 *
 *   200 {"ads":[{"ticket":"…","ticketId":"<uuid>","expiresAt":"<RFC 3339>",
 *               "creative":{"kind":"text|image|video","title":"…","text":"…",
 *                           "mediaUrl":"https://…"|null,"clickUrl":"https://…"}}],
 *        "reason":"…"|null}
 *
 * Only the first ad is used. An answer that does not have this shape, or whose URLs are not
 * http(s), counts as no ad.
 */

export const FILL_PATH = '/v1/fill';

export type CreativeKind = 'text' | 'image' | 'video';

export interface Creative {
  kind: CreativeKind;
  title: string;
  text: string;
  mediaUrl: string | null;
  clickUrl: string;
}

export interface Ad {
  ticket: string;
  ticketId: string;
  expiresAt: string;
  creative: Creative;
}

export function fillBody(placement: string, viewer: string | null | undefined, pageUrl: string): string {
  return JSON.stringify(viewer ? { placement, viewer, pageUrl } : { placement, pageUrl });
}

/** An absolute http: or https: URL, else null (no javascript:, data: or relative URLs). */
export function httpUrl(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch (_) {
    return null;
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The first usable ad of a /v1/fill answer, or null. */
export function parseFill(answer: unknown): Ad | null {
  const ads = answer && (answer as { ads?: unknown }).ads;
  const ad = Array.isArray(ads) ? (ads[0] as Record<string, unknown> | undefined) : undefined;
  if (!ad || typeof ad !== 'object' || typeof ad.ticket !== 'string' || !ad.ticket) return null;
  const c = ad.creative as Record<string, unknown> | undefined;
  if (!c || typeof c !== 'object') return null;
  const kind = c.kind;
  if (kind !== 'text' && kind !== 'image' && kind !== 'video') return null;
  const clickUrl = httpUrl(c.clickUrl);
  const mediaUrl = c.mediaUrl == null ? null : httpUrl(c.mediaUrl);
  if (!clickUrl || (kind !== 'text' && !mediaUrl)) return null;
  return {
    ticket: ad.ticket,
    ticketId: str(ad.ticketId),
    expiresAt: str(ad.expiresAt),
    creative: { kind, title: str(c.title), text: str(c.text), mediaUrl, clickUrl },
  };
}
