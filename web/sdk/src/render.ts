/**
 * Builds a creative's DOM. Creative strings only ever go through textContent and
 * attributes, never innerHTML. The whole creative is one link to clickUrl.
 */

import type { Creative } from './fill';

export interface Rendered {
  /** The <a> that fills the slot's box: observed for viewability, listened to for clicks. */
  root: HTMLAnchorElement;
  /** The <img> or <video> whose load completes the render, or null for text ads. */
  media: HTMLImageElement | HTMLVideoElement | null;
}

const FILL = 'display:block;width:100%;height:100%;';

function make<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, css: string): HTMLElementTagNameMap[K] {
  const e = doc.createElement(tag);
  e.style.cssText = css;
  return e;
}

export function renderCreative(doc: Document, c: Creative): Rendered {
  const a = make(
    doc,
    'a',
    FILL +
      'position:relative;overflow:hidden;box-sizing:border-box;text-decoration:none;color:#111;background:#fff;font:14px/1.4 system-ui,sans-serif',
  );
  a.setAttribute('href', c.clickUrl);
  a.setAttribute('target', '_blank');
  a.setAttribute('rel', 'noopener sponsored');
  if (c.title) a.setAttribute('title', c.title);

  let media: HTMLImageElement | HTMLVideoElement | null = null;
  if (c.kind === 'image') {
    const img = make(doc, 'img', FILL + 'object-fit:contain;border:0');
    img.setAttribute('alt', c.title);
    media = img;
  } else if (c.kind === 'video') {
    const v = make(doc, 'video', FILL + 'object-fit:contain;background:#000');
    // Muted inline autoplay is what browsers allow without a gesture; the attributes are for
    // the parser-facing state and the properties for the live element.
    for (const attr of ['muted', 'autoplay', 'playsinline', 'loop']) v.setAttribute(attr, '');
    v.muted = v.defaultMuted = v.autoplay = v.loop = v.playsInline = true;
    v.setAttribute('preload', 'auto');
    media = v;
  } else {
    const box = make(doc, 'div', FILL + 'box-sizing:border-box;padding:10px 12px;overflow:hidden');
    const title = make(doc, 'div', 'font-weight:600;font-size:16px;margin:0 0 4px');
    title.textContent = c.title;
    const text = make(doc, 'div', '');
    text.textContent = c.text;
    box.appendChild(title);
    box.appendChild(text);
    a.appendChild(box);
  }
  if (media) {
    // src last, after the caller has attached its load/error listeners: see loadMedia.
    a.appendChild(media);
  }
  const label = make(
    doc,
    'span',
    'position:absolute;top:0;right:0;padding:0 4px;font:10px/14px system-ui,sans-serif;color:#fff;background:rgba(0,0,0,.55)',
  );
  label.textContent = 'Ad';
  a.appendChild(label);
  return { root: a, media };
}

/** Starts loading the media once listeners are in place. */
export function loadMedia(media: HTMLImageElement | HTMLVideoElement, url: string): void {
  media.setAttribute('src', url);
  const v = media as HTMLVideoElement;
  if (typeof v.play === 'function') {
    try {
      const p = v.play();
      if (p && typeof p.catch === 'function') p.catch(() => undefined);
    } catch (_) {
      // autoplay refused: the ad shows its first frame and never counts as playing
    }
  }
}
