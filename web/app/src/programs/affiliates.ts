// Affiliates: apply, then (once an admin approved) make codes that attribute advertisers,
// and follow the commissions they earn: held, released, in an epoch, claimable, claimed.

import { html, nothing } from 'lit-html';
import { api } from '../lib/api';
import { dateTime } from '../lib/format';
import { field, onSubmit } from '../lib/form';
import { found, learnTokens, money, payoutsTable, words, type Program, type TokenPayout } from './common';

interface Affiliate {
  status: 'pending' | 'active' | 'suspended' | 'terminated';
  rateBps: number;
  codes: string[];
  appliedAt: string;
}

interface Commission {
  batchId: number;
  token: string;
  amount: string;
  state: string;
  heldUntil: string | null;
  note: string | null;
  accruedAt: string;
}

interface Dashboard {
  advertisers: { advertiser: string; channel: string; attributedAt: string; endsAt: string }[];
  commissions: Commission[];
  payouts: { tokens: TokenPayout[] };
}

let affiliate: Affiliate | null = null;
let dashboard: Dashboard | null = null;

const linkOf = (code: string) => `${location.origin}/app/?ref=${encodeURIComponent(code)}`;

export const affiliatesProgram: Program = {
  id: 'affiliates',
  title: 'Affiliates',
  async load(ctx, me) {
    affiliate = await found<Affiliate>('/v1/affiliates/me');
    // The role comes with approval and stays, so that a suspended affiliate still sees its
    // commissions.
    dashboard = me.roles.includes('affiliate') ? await api.get<Dashboard>('/v1/affiliates/me/dashboard') : null;
    if (dashboard) {
      await learnTokens(ctx, [...dashboard.payouts.tokens.map((t) => t.token), ...dashboard.commissions.map((c) => c.token)]);
    }
  },
  view(ctx) {
    if (!affiliate) {
      return html`<p>Affiliates bring advertisers and earn a share of the platform's fee on what they spend.</p>
        <form @submit=${onSubmit((form) => {
          const reason = field(form, 'reason');
          ctx.act('Applying', async () => {
            await api.post('/v1/affiliates/me', { reason });
            return 'Applied: an admin will approve or refuse your application.';
          });
        })}>
          <label>How you will bring advertisers <textarea name="reason" rows="3" required maxlength="500"></textarea></label>
          <div><button type="submit" ?disabled=${ctx.busy}>Apply</button></div>
        </form>`;
    }
    const a = affiliate;
    return html`
      <dl class="figures">
        <div><dt>Status</dt><dd id="affiliate-status">${a.status}</dd></div>
        <div><dt>Rate</dt><dd>${a.rateBps / 100}% of the platform's share</dd></div>
        <div><dt>Applied</dt><dd>${dateTime(a.appliedAt)}</dd></div>
      </dl>
      ${a.status === 'pending' ? html`<p>Your application waits for an admin.</p>` : nothing}
      ${a.codes.length
        ? html`<h3>Your codes</h3><ul>${a.codes.map((c) => html`<li><span class="mono">${c}</span>:
            <a class="mono" href=${linkOf(c)}>${linkOf(c)}</a></li>`)}</ul>`
        : nothing}
      ${a.status === 'active'
        ? html`<button type="button" ?disabled=${ctx.busy}
            @click=${() => ctx.act('Making a code', async () => {
              const made = await api.post<{ code: string }>('/v1/affiliates/me/codes', {});
              return `New code ${made.code}.`;
            })}>New code</button>`
        : nothing}
      ${dashboard ? dashboardView(dashboard) : nothing}`;
  },
};

function dashboardView(d: Dashboard) {
  return html`
    <h3>Your commissions</h3>
    ${payoutsTable(d.payouts.tokens)}
    ${d.commissions.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th>Batch</th><th class="num">Commission</th><th>State</th><th>Accrued</th></tr></thead>
          <tbody>${d.commissions.map((c) => html`<tr>
            <td>${c.batchId}</td><td class="num">${money(c.amount, c.token)}</td>
            <td>${words(c.state)}${c.heldUntil ? ` until ${dateTime(c.heldUntil)}` : ''}${c.note ? ` (${c.note})` : ''}</td>
            <td>${dateTime(c.accruedAt)}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No commission yet.</p>`}
    <h3>Advertisers you brought</h3>
    ${d.advertisers.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th>Advertiser</th><th>Came by</th><th>Since</th><th>Earns you until</th></tr></thead>
          <tbody>${d.advertisers.map((a) => html`<tr><td class="mono">${a.advertiser}</td><td>${a.channel}</td>
            <td>${dateTime(a.attributedAt)}</td><td>${dateTime(a.endsAt)}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>None yet.</p>`}`;
}
