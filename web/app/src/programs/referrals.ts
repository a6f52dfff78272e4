// Referrals: one's code and a link that carries it (the frame passes `ref` on a first
// sign-in), the wallets it brought with their status, and the bonuses they earned.

import { html, nothing } from 'lit-html';
import { api } from '../lib/api';
import { dateTime } from '../lib/format';
import { learnTokens, money, words, type Program } from './common';

interface MyCode {
  code: string;
  useLimit: number | null;
  uses: number;
  link: string;
  linkExpiresAt: string;
}

interface Referral {
  referee: string;
  channel: string;
  referredAt: string;
  status: string;
  reason: string | null;
}

interface Bonus {
  milestone: number;
  token: string;
  amount: string;
  state: string;
  note: string | null;
  awardedAt: string;
}

interface Snapshot {
  referrals: number;
  qualified: number;
  pending: number;
  disqualified: number;
  nextMilestone: number;
  badge: string | null;
  bonuses: Bonus[];
}

let code: MyCode | null = null;
let referrals: Referral[] = [];
let snapshot: Snapshot | null = null;

/** The pages' own sign-in link with the code: it does not expire, unlike the API's. */
const linkOf = (c: string) => `${location.origin}/app/?ref=${encodeURIComponent(c)}`;

export const referralsProgram: Program = {
  id: 'referrals',
  title: 'Referrals',
  async load(ctx) {
    const [mine, page, snap] = await Promise.all([
      api.get<MyCode>('/v1/referrals/me'),
      api.get<{ referrals: Referral[] }>('/v1/referrals/me/referrals'),
      api.get<Snapshot>('/v1/referrals/me/snapshot'),
    ]);
    code = mine;
    referrals = page.referrals;
    snapshot = snap;
    await learnTokens(ctx, snap.bonuses.map((b) => b.token));
  },
  view() {
    if (!code || !snapshot) return html``;
    const link = linkOf(code.code);
    return html`
      <p>Share your code or link: whoever signs in with it for the first time counts as your referral.</p>
      <dl class="figures">
        <div><dt>Your code</dt><dd class="mono" id="referral-code">${code.code}</dd></div>
        <div><dt>Used</dt><dd>${code.uses}${code.useLimit === null ? '' : ` of ${code.useLimit}`}</dd></div>
        <div><dt>Referrals</dt><dd id="referral-count">${snapshot.referrals}</dd></div>
        <div><dt>Qualified</dt><dd>${snapshot.qualified}</dd></div>
        <div><dt>Pending</dt><dd>${snapshot.pending}</dd></div>
        <div><dt>Next bonus at</dt><dd>${snapshot.nextMilestone} qualified</dd></div>
        ${snapshot.badge ? html`<div><dt>Badge</dt><dd>${words(snapshot.badge)}</dd></div>` : nothing}
      </dl>
      <p>Your link: <a class="mono" id="referral-link" href=${link}>${link}</a></p>
      <h3>Your referrals</h3>
      ${referrals.length
        ? html`<div class="table-wrap"><table>
            <thead><tr><th>Wallet</th><th>Came by</th><th>When</th><th>Status</th><th>Why not (yet)</th></tr></thead>
            <tbody>${referrals.map((r) => html`<tr>
              <td class="mono">${r.referee}</td><td>${r.channel}</td><td>${dateTime(r.referredAt)}</td>
              <td>${words(r.status)}</td><td>${r.reason ? words(r.reason) : ''}</td></tr>`)}</tbody>
          </table></div>`
        : html`<p>No one has signed in with your code yet.</p>`}
      <h3>What they earned you</h3>
      ${snapshot.bonuses.length
        ? html`<div class="table-wrap"><table>
            <thead><tr><th>Milestone</th><th class="num">Bonus</th><th>State</th><th>Awarded</th></tr></thead>
            <tbody>${snapshot.bonuses.map((b) => html`<tr>
              <td>${b.milestone}</td><td class="num">${money(b.amount, b.token)}</td>
              <td>${words(b.state)}${b.note ? ` (${b.note})` : nothing}</td>
              <td>${dateTime(b.awardedAt)}</td></tr>`)}</tbody>
          </table></div>`
        : html`<p>No bonus yet: the next comes at ${snapshot.nextMilestone} qualified referrals.</p>`}`;
  },
};
