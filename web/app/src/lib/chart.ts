// Charts with uPlot (about 22 kB gzipped: canvas drawing, time axes, bars, no dependencies),
// each with its numbers in a table under a disclosure, so that a screen reader gets them too.

import { html, type TemplateResult } from 'lit-html';
import { ref } from 'lit-html/directives/ref.js';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  values: number[];
  /** Bars rather than a line. */
  bars?: boolean;
}

export interface Chart {
  title: string;
  /** Unix seconds of each day's start (a time axis) or, with `categories`, 0..n-1. */
  x: number[];
  /** Names for the x values (a category axis), e.g. node names. */
  categories?: string[];
  series: Series[];
  /** How a value is shown in the table and the legend. */
  format?: (value: number) => string;
}

const COLOURS = ['#2458a6', '#c2571a', '#2f7d4f', '#8a3d9c'];
const DAY = 86_400;
/** What each element shows: its plot, and the data and width it was drawn for. */
const drawn = new WeakMap<Element, { plot: uPlot; key: string }>();

function draw(el: Element, chart: Chart): void {
  // lit-html runs a ref while a new template is still a detached fragment, which has no
  // width to measure: draw once it is in the page.
  if (!el.isConnected) {
    requestAnimationFrame(() => el.isConnected && draw(el, chart));
    return;
  }
  const width = Math.max(260, Math.min(720, el.parentElement?.clientWidth ?? 640));
  // Every render of the page calls this; the same data at the same width is drawn already.
  const key = JSON.stringify([width, chart.title, chart.x, chart.categories, chart.series]);
  const previous = drawn.get(el);
  if (previous?.key === key) return;
  previous?.plot.destroy();
  const bars = uPlot.paths.bars?.({ size: [0.6, 48] });
  const plot = new uPlot(
    {
      width,
      height: 220,
      scales: {
        // Half a step of room either side, so that the first and last bars are whole.
        x: chart.categories
          ? { time: false, range: () => [-0.5, chart.categories!.length - 0.5] }
          : { time: true, range: (_u, min, max) => [min - DAY / 2, max + DAY / 2] },
        // From zero: a bar's height is its value.
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max : 1] },
      },
      axes: [
        chart.categories
          ? { incrs: [1], values: (_u, splits) => splits.map((i) => chart.categories![i] ?? '') }
          : // One tick a day (or every few days), labelled as days, never as hours.
            { incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY], values: '{M}/{D}' },
        { values: (_u, splits) => splits.map((v) => (chart.format ? chart.format(v) : String(v))) },
      ],
      series: [
        {},
        ...chart.series.map((s, i) => ({
          label: s.label,
          stroke: COLOURS[i % COLOURS.length],
          fill: s.bars ? COLOURS[i % COLOURS.length] + '99' : undefined,
          width: 2,
          paths: s.bars ? bars : undefined,
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : chart.format ? chart.format(v) : String(v)),
        })),
      ],
    },
    [chart.x, ...chart.series.map((s) => s.values)],
    el as HTMLElement,
  );
  drawn.set(el, { plot, key });
}

/** A chart and, under "Data", the same numbers as a table. */
export function chart(c: Chart): TemplateResult {
  const label = (i: number) =>
    c.categories ? c.categories[i] : new Date(c.x[i] * 1000).toLocaleDateString();
  const show = (v: number) => (c.format ? c.format(v) : String(v));
  return html`<figure class="chart">
    <figcaption>${c.title}</figcaption>
    ${c.x.length
      ? html`<div role="img" aria-label=${c.title} ${ref((el) => el && draw(el, c))}></div>`
      : html`<p>Nothing yet.</p>`}
    <details><summary>Data</summary>
      <table>
        <thead><tr><th scope="col">${c.categories ? 'Name' : 'Day'}</th>${c.series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
        <tbody>${c.x.map((_, i) => html`<tr><th scope="row">${label(i)}</th>${c.series.map((s) => html`<td>${show(s.values[i])}</td>`)}</tr>`)}</tbody>
      </table>
    </details>
  </figure>`;
}
