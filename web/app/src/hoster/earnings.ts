// The hoster's earnings statement for a period: per token, the opening balance, a line per
// source (ad revenue and witness fees per node and placement, and the rest), the closing
// balance, and where the period's earnings stand now; and the same as a CSV file.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hex } from 'viem';
import { api, download } from '../lib/api';
import type { Ctx } from '../lib/page';
import { dateTime } from '../lib/format';
import { amount, symbolOf } from './tokens';

interface LineAmount {
  line: string;
  node: string | null;
  nodeName: string | null;
  placement: string | null;
  placementName: string | null;
  amount: string;
}

interface TokenLines {
  token: Address;
  opening: string;
  lines: LineAmount[];
  closing: string;
}

interface Body {
  payee: Address;
  zone: string;
  period: string;
  startsOn: string;
  startsAt: string;
  endsAt: string;
  tokens: TokenLines[];
}

interface TokenStates {
  token: Address;
  held: { amount: string; reason: string; until: string | null; note: string }[];
  released: string;
  inEpoch: { epoch: number; amount: string; claimableAt: number | null } | null;
  claimable: string;
  claimed: string;
  claimedTx: Hex | null;
}

interface StatementView {
  statement: Body;
  closed: boolean;
  hash: Hex | null;
  states: TokenStates[];
}

type Period = 'day' | 'week' | 'month';
const PERIODS: [Period, string][] = [['month', 'This month'], ['week', 'This week'], ['day', 'Today']];

const LINES: Record<string, string> = {
  ad_revenue: 'Ad revenue',
  witness_fees: 'Witness fees',
  viewer_rewards: 'Viewer rewards',
  referral_bonuses: 'Referral bonuses',
  program_rewards: 'Program rewards',
  commissions: 'Commissions',
  reseller_markups: 'Reseller markups',
  marketplace_sales: 'Marketplace sales',
  refunds: 'Refunds',
  platform_fees: 'Platform fees',
  commissions_paid: 'Commissions paid',
  program_spend: 'Program spend',
  adjustments: 'Adjustments',
};

let period: Period = 'month';
let statement: StatementView | null = null;

const query = () => new URLSearchParams({ period }).toString();

/** The tokens the statement names, for their symbols. */
export const statementTokens = (): Address[] => [
  ...(statement?.statement.tokens.map((t) => t.token) ?? []),
  ...(statement?.states.map((s) => s.token) ?? []),
];

export async function loadStatement(): Promise<void> {
  statement = await api.get<StatementView>(`/v1/statements/me?${query()}`);
}

/** Saves the statement's CSV: fetched with the session's token, which a plain link would not carry. */
async function saveCsv(): Promise<string> {
  const { name, blob } = await download(`/v1/statements/me/csv?${query()}`);
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click is handled.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return `Downloaded ${name} (${blob.size} bytes).`;
}

const source = (l: LineAmount): string =>
  [LINES[l.line] ?? l.line, l.nodeName && `node ${l.nodeName}`, l.placementName && `placement ${l.placementName}`]
    .filter(Boolean)
    .join(' · ');

function tokenTable(t: TokenLines): TemplateResult {
  return html`<div class="table-wrap"><table>
    <caption>${symbolOf(t.token)}</caption>
    <thead><tr><th scope="col">Line</th><th scope="col" class="num">Amount</th></tr></thead>
    <tbody>
      <tr><th scope="row">Opening balance</th><td class="num">${amount(t.opening, t.token)}</td></tr>
      ${t.lines.map((l) => html`<tr><th scope="row">${source(l)}</th><td class="num">${amount(l.amount, t.token)}</td></tr>`)}
      <tr><th scope="row">Closing balance</th><td class="num">${amount(t.closing, t.token)}</td></tr>
    </tbody>
  </table></div>`;
}

function states(s: TokenStates): TemplateResult {
  const held = s.held.reduce((sum, h) => sum + BigInt(h.amount), 0n);
  return html`<dl class="figures" aria-label=${`Where this period's ${symbolOf(s.token)} stand now`}>
    <div><dt>Held</dt><dd>${amount(held, s.token)}</dd></div>
    <div><dt>Released, in no epoch yet</dt><dd>${amount(s.released, s.token)}</dd></div>
    <div><dt>${s.inEpoch ? `In epoch ${s.inEpoch.epoch}` : 'In an epoch'}</dt>
      <dd>${amount(s.inEpoch?.amount ?? '0', s.token)}</dd></div>
    <div><dt>Claimable</dt><dd>${amount(s.claimable, s.token)}</dd></div>
    <div><dt>Claimed</dt><dd>${amount(s.claimed, s.token)}</dd></div>
  </dl>
  ${s.held.length
    ? html`<ul>${s.held.map((h) => html`<li>${amount(h.amount, s.token)} held: ${h.note}${h.until ? ` (until ${dateTime(h.until)})` : ''}</li>`)}</ul>`
    : nothing}`;
}

export function earningsView(ctx: Ctx): TemplateResult {
  const body = statement?.statement;
  return html`<section aria-labelledby="earnings-title">
    <h2 id="earnings-title">Earnings statement</h2>
    <form @submit=${(e: Event) => e.preventDefault()}>
      <label for="statement-period">Period</label>
      <select id="statement-period" @change=${(e: Event) => {
        period = (e.currentTarget as HTMLSelectElement).value as Period;
        void ctx.act('Reading the statement', async () => 'Statement updated.');
      }}>${PERIODS.map(([value, name]) => html`<option value=${value} ?selected=${value === period}>${name}</option>`)}</select>
      <div class="row"><button type="button" class="secondary" ?disabled=${ctx.busy}
        @click=${() => ctx.act('Downloading the statement', saveCsv)}>Download CSV</button></div>
    </form>
    ${body
      ? html`<p>${dateTime(body.startsAt)} to ${dateTime(body.endsAt)} (${body.zone}),
          ${statement!.closed ? html`closed; its hash is <span class="mono">${statement!.hash}</span>` : 'still open'}.</p>
        ${body.tokens.length ? body.tokens.map(tokenTable) : html`<p>Nothing earned in this period.</p>`}
        ${statement!.states.map((s) => html`<h3>${symbolOf(s.token)} of this period, now</h3>${states(s)}`)}`
      : nothing}
  </section>`;
}
