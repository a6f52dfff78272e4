// Promotions: anyone sees the offer behind a code; an advertiser redeems it on one of its
// campaigns and follows what each redemption gave.

import { html, nothing, type TemplateResult } from 'lit-html';
import { api, idempotencyKey } from '../lib/api';
import { dateTime } from '../lib/format';
import type { Ctx } from '../lib/page';
import type { User } from '../lib/session';
import { field, onSubmit } from '../lib/form';
import { learnTokens, money, roleOffer, words, type Program } from './common';

type Offer =
  | { kind: 'adCredit'; budget: string; credit: string }
  | { kind: 'feeDiscount'; bps: number; days: number }
  | { kind: 'freeTrial'; impressions: number };

interface PublicPromotion {
  code: string;
  name: string;
  offer: Offer;
  status: string;
  token: string | null;
  firstTimeOnly: boolean;
  minBudget: string | null;
  startsAt: string;
  endsAt: string;
}

interface Redemption {
  id: string;
  code: string;
  name: string;
  offer: string;
  campaignId: string;
  redeemedAt: string;
  credit: string | null;
  creditStatus: string | null;
  creditError: string | null;
  discountBps: number | null;
  discountUntil: string | null;
  trialImpressions: number | null;
  trialUsed: number;
  waived: { token: string; amount: string }[];
}

interface Campaign {
  id: string;
  name: string;
  token: string;
  status: string;
}

let shown: PublicPromotion | null = null;
let campaigns: Campaign[] = [];
let redemptions: Redemption[] = [];

export const promotionsProgram: Program = {
  id: 'promotions',
  title: 'Promotions',
  async load(ctx, me) {
    if (me.roles.includes('advertiser')) {
      [campaigns, redemptions] = await Promise.all([
        api.get<Campaign[]>('/v1/campaigns'),
        api.get<Redemption[]>('/v1/me/promotions'),
      ]);
    }
    await learnTokens(ctx, [
      ...(shown?.token ? [shown.token] : []),
      ...redemptions.flatMap((r) => r.waived.map((w) => w.token)),
    ]);
  },
  view(ctx, me) {
    return html`
      <form @submit=${onSubmit((form) => {
        const code = field(form, 'code');
        ctx.act(`Looking up ${code}`, async () => {
          shown = await api.get<PublicPromotion>(`/v1/promotions/${encodeURIComponent(code)}`, { anonymous: true });
          return `${shown.name}: ${shown.status}.`;
        });
      })}>
        <label>Promotion code <input name="code" class="mono" required minlength="4" maxlength="32"></label>
        <div><button type="submit" ?disabled=${ctx.busy}>Show promotion</button></div>
      </form>
      ${shown ? promotionView(ctx, me, shown) : nothing}
      ${me.roles.includes('advertiser') ? redemptionsView() : nothing}`;
  },
};

function offerText(offer: Offer, token: string | null): string {
  switch (offer.kind) {
    case 'adCredit':
      return `an ad credit of ${token ? money(offer.credit, token) : offer.credit} into your campaign's escrow`;
    case 'feeDiscount':
      return `${offer.bps / 100}% off the platform's fee for ${offer.days} days`;
    case 'freeTrial':
      return `no platform fee on your first ${offer.impressions.toLocaleString('en-US')} impressions`;
  }
}

function promotionView(ctx: Ctx, me: User, p: PublicPromotion): TemplateResult {
  return html`<div class="card" id="promotion">
    <h3>${p.name} <span class="mono">${p.code}</span></h3>
    <p>Gives ${offerText(p.offer, p.token)}. ${p.status === 'active' ? 'Active' : `Now ${p.status}`}:
      ${dateTime(p.startsAt)} to ${dateTime(p.endsAt)}.
      ${p.firstTimeOnly ? 'For advertisers never billed before.' : ''}
      ${p.minBudget && p.token ? `The campaign must be funded with at least ${money(p.minBudget, p.token)} of your own.` : ''}</p>
    ${me.roles.includes('advertiser') ? redeemForm(ctx, p) : roleOffer(ctx, 'advertiser', 'Redeeming it on a campaign.')}
  </div>`;
}

function redeemForm(ctx: Ctx, p: PublicPromotion): TemplateResult {
  const eligible = campaigns.filter((c) => !p.token || c.token.toLowerCase() === p.token.toLowerCase());
  if (!eligible.length) return html`<p>You have no campaign ${p.token ? 'in its token ' : ''}to redeem it on: make one on the advertiser page.</p>`;
  return html`<form @submit=${onSubmit((form) => {
    const campaignId = field(form, 'campaign');
    ctx.act(`Redeeming ${p.code}`, async () => {
      await api.post(`/v1/promotions/${encodeURIComponent(p.code)}/redemptions`, { campaignId }, { idempotencyKey: idempotencyKey() });
      return `Redeemed ${p.code}.`;
    });
  })}>
    <label for="promotion-campaign">Campaign</label>
    <select id="promotion-campaign" name="campaign">${eligible.map((c) => html`<option value=${c.id}>${c.name} (${c.status.toLowerCase()})</option>`)}</select>
    <div><button type="submit" ?disabled=${ctx.busy}>Redeem</button></div>
  </form>`;
}

function standing(r: Redemption): string {
  if (r.creditStatus) return `credit ${r.creditStatus}${r.creditError ? `: ${r.creditError}` : ''}`;
  if (r.discountUntil) return `${(r.discountBps ?? 0) / 100}% off until ${dateTime(r.discountUntil)}`;
  if (r.trialImpressions !== null) return `${r.trialUsed} of ${r.trialImpressions} free impressions used`;
  return '';
}

function redemptionsView(): TemplateResult {
  const names = new Map(campaigns.map((c) => [c.id, c.name]));
  return html`<h3>Your redemptions</h3>
    ${redemptions.length
      ? html`<div class="table-wrap"><table id="redemptions">
          <thead><tr><th>Code</th><th>Offer</th><th>Campaign</th><th>Redeemed</th><th>Status</th><th class="num">Fees waived</th></tr></thead>
          <tbody>${redemptions.map((r) => html`<tr>
            <td class="mono">${r.code}</td><td>${words(r.offer)}</td><td>${names.get(r.campaignId) ?? r.campaignId}</td>
            <td>${dateTime(r.redeemedAt)}</td><td>${standing(r)}</td>
            <td class="num">${r.waived.map((w) => money(w.amount, w.token)).join(', ') || 'none yet'}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>You have redeemed no promotion yet.</p>`}`;
}
