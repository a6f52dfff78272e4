// A campaign's analytics as charts: spend, impressions and clicks, and CTR by local day (the
// API counts days in the brand's time zone), and spend by hoster node.

import { html, type TemplateResult } from 'lit-html';
import { chart } from '../lib/chart';
import type { Token } from '../lib/chain';
import { units } from '../lib/format';
import type { Analytics } from './model';

/** A local date (YYYY-MM-DD) as the unix second of its midnight in the browser's zone, so
 *  that the chart's axis and table show the same date the API counted. */
function midnight(date: string): number {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(y, m - 1, d).getTime() / 1000;
}

const percent = (v: number) => `${(v * 100).toFixed(2)}%`;
const count = (v: number) => Math.round(v).toLocaleString('en-US');

/** The charts, one under another, each as wide as the page allows. */
export function charts(a: Analytics, token: Token): TemplateResult {
  // Amounts without the symbol, which the series' name carries: axis labels stay short.
  const money = (v: number) => units(BigInt(Math.round(v)), token.decimals);
  const spend = `Spend (${token.symbol})`;
  const x = a.days.map((d) => midnight(d.date));
  const zone = a.timeZone;
  return html`<div>
    ${chart({
      title: `Spend by day (${zone})`,
      x,
      series: [{ label: spend, values: a.days.map((d) => Number(d.spend)), bars: true }],
      format: money,
    })}
    ${chart({
      title: `Impressions and clicks by day (${zone})`,
      x,
      series: [
        { label: 'Impressions', values: a.days.map((d) => d.impressions) },
        { label: 'Clicks', values: a.days.map((d) => d.clicks) },
      ],
      format: count,
    })}
    ${chart({
      title: `Click-through rate by day (${zone})`,
      x,
      series: [{ label: 'CTR', values: a.days.map((d) => d.ctr) }],
      format: percent,
    })}
    ${chart({
      title: 'Spend by node',
      x: a.nodes.map((_, i) => i),
      // Hoster nodes are not the advertiser's to name: their ids tell them apart.
      categories: a.nodes.map((n) => `node ${n.nodeId.slice(0, 8)}`),
      series: [{ label: spend, values: a.nodes.map((n) => Number(n.spend)), bars: true }],
      format: money,
    })}
  </div>`;
}
