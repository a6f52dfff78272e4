// The advertiser page: brands and their budgets, campaigns and their status, funding a
// campaign's escrow from the wallet (one permit signature and one transaction), topping it
// up, closing it and withdrawing what is left after the grace period, and what the campaign
// bought, in charts.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hash } from 'viem';
import { api, idempotencyKey } from '../lib/api';
import { balanceOf, blockOf, chainNow, token, type Token } from '../lib/chain';
import { field, onSubmit } from '../lib/form';
import { countdown, dateTime, parseAmount, shortAddress, units } from '../lib/format';
import * as escrow from '../lib/escrow';
import { start, txLink, type Ctx } from '../lib/page';
import { charts } from '../advertiser/charts';
import { analytics, mirror, mirrorReaches, type Analytics, type Brand, type Campaign, type Mirror, type Status, type TokenPrices } from '../advertiser/model';

/** The campaign shown in detail, with its escrow and numbers. */
interface Detail {
  campaign: Campaign;
  brand: Brand | undefined;
  token: Token;
  /** Null when the server does not say where the escrow contract is. */
  chain: escrow.OnChain | null;
  mirror: Mirror | null;
  analytics: Analytics;
  /** The wallet's balance of the campaign's token. */
  balance: bigint;
  /** Seconds the chain's clock is ahead of this browser's. */
  skew: number;
}

let brands: Brand[] = [];
let campaigns: Campaign[] = [];
/** Tokens the platform has prices for: the ones campaigns can pay in. */
let tokens: Token[] = [];
let detail: Detail | null = null;
let lastTx: { what: string; hash: Hash } | null = null;
let ticker: number | undefined;

const SELECTED = /^#campaign=([0-9a-f-]{36})$/;
const selectedId = (): string | null => SELECTED.exec(location.hash)?.[1] ?? null;

const now = () => Math.floor(Date.now() / 1000);


/** An amount typed into a form, in base units; a refusal names the field. */
function amount(form: HTMLFormElement, name: string, label: string, t: { decimals: number; symbol: string }): bigint {
  const parsed = parseAmount(field(form, name), t.decimals);
  if (parsed === null || parsed <= 0n) {
    throw new Error(`${label}: enter an amount of ${t.symbol} greater than zero, with at most ${t.decimals} decimals.`);
  }
  return parsed;
}

/** A `datetime-local` value (the browser's zone) as an RFC 3339 instant. */
function instant(form: HTMLFormElement, name: string, label: string): string {
  const value = field(form, name);
  const at = value ? new Date(value) : null;
  if (!at || Number.isNaN(at.getTime())) throw new Error(`${label}: enter a date and time.`);
  return at.toISOString();
}

/** An instant as a `datetime-local` value in the browser's zone. */
function local(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** Brand budgets count base units of the campaigns' tokens: shown in the first priced one. */
const budgetUnit = (): { decimals: number; symbol: string } => tokens[0] ?? { decimals: 0, symbol: 'base units' };

/** A form's submit handler: runs `work`, and empties the form once it succeeded if `reset`. */
const submit = (work: (form: HTMLFormElement) => Promise<boolean>, reset = true) =>
  onSubmit(async (form) => {
    if ((await work(form)) && reset) form.reset();
  });

/** Every IANA zone this browser knows, and UTC, which browsers leave out of that list. */
const HERE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const ZONES = [...new Set(['UTC', HERE, ...Intl.supportedValuesOf('timeZone')])];

async function load(ctx: Ctx): Promise<void> {
  const wallet = ctx.wallet!;
  const [b, c, prices] = await Promise.all([
    api.get<Brand[]>('/v1/brands'),
    api.get<Campaign[]>('/v1/campaigns'),
    api.get<TokenPrices[]>('/v1/pricing'),
  ]);
  brands = b;
  campaigns = c.sort((x, y) => y.createdAt.localeCompare(x.createdAt));
  // A priced address that is no token on this chain cannot fund anything: left out.
  const found = await Promise.all(prices.map((p) => token(wallet, p.token).catch(() => null)));
  tokens = found.filter((t): t is Token => t !== null);

  const campaign = campaigns.find((x) => x.id === selectedId()) ?? campaigns[0];
  detail = campaign ? await loadDetail(ctx, campaign) : null;
  tick(ctx);
}

async function loadDetail(ctx: Ctx, campaign: Campaign): Promise<Detail> {
  const wallet = ctx.wallet!;
  const [t, chain, mirrored, numbers, balance, chainTime] = await Promise.all([
    token(wallet, campaign.token),
    ctx.config.escrow ? escrow.onChain(wallet, ctx.config.escrow, campaign.chainCampaignId) : null,
    mirror(campaign.chainCampaignId),
    analytics(campaign),
    balanceOf(wallet, campaign.token),
    chainNow(wallet),
  ]);
  return {
    campaign,
    brand: brands.find((b) => b.id === campaign.brandId),
    token: t,
    chain,
    mirror: mirrored,
    analytics: numbers,
    balance,
    skew: chainTime - now(),
  };
}

/** When the shown campaign's remaining budget can be withdrawn (unix seconds), if known. */
function withdrawableAt(ctx: Ctx, d: Detail): number | null {
  if (!d.chain) return null;
  if (ctx.config.gracePeriod !== null) return d.chain.end + ctx.config.gracePeriod;
  return d.mirror?.withdrawableAt ?? null;
}

/** Seconds until withdrawal opens, on the chain's clock; 0 once open. */
function waitLeft(ctx: Ctx, d: Detail): number | null {
  const at = withdrawableAt(ctx, d);
  return at === null ? null : Math.max(0, at - (now() + d.skew));
}

/** Re-renders every second while a countdown is on screen. */
function tick(ctx: Ctx): void {
  const counting = () => {
    const d = detail;
    return !!d?.chain && escrow.isOpen(d.chain) && d.chain.remaining > 0n && d.chain.end <= now() + d.skew && (waitLeft(ctx, d) ?? 0) > 0;
  };
  if (counting() && ticker === undefined) {
    ticker = window.setInterval(() => {
      if (!counting()) {
        window.clearInterval(ticker);
        ticker = undefined;
      }
      ctx.render();
    }, 1000);
  }
}

const STATUS_WORDS: Record<Status, string> = {
  DRAFT: 'Draft',
  SCHEDULED: 'Scheduled',
  RUNNING: 'Running',
  PAUSED: 'Paused',
  BUDGET_REACHED: 'Budget reached',
  COMPLETED: 'Completed',
};

// ---- brands -------------------------------------------------------------------------------

// Selects sit beside their labels, not inside: a label's text would include every option's.
function brandsView(ctx: Ctx): TemplateResult {
  const unit = budgetUnit();
  const create = submit((form) => ctx.act('Creating the brand', async () => {
    const brand = await api.post<Brand>('/v1/brands', {
      name: field(form, 'name'),
      timeZone: field(form, 'timeZone'),
      dailyBudget: amount(form, 'dailyBudget', 'Daily budget', unit).toString(),
      monthlyBudget: amount(form, 'monthlyBudget', 'Monthly budget', unit).toString(),
    }, { idempotencyKey: idempotencyKey() });
    return `Brand ${brand.name} created.`;
  }));
  return html`<section aria-labelledby="brands-title">
    <h2 id="brands-title">Brands</h2>
    ${brands.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Brand</th><th scope="col">Time zone</th><th scope="col" class="num">Daily budget</th>
            <th scope="col" class="num">Monthly budget</th><th scope="col">Active</th></tr></thead>
          <tbody>${brands.map((b) => html`<tr>
            <th scope="row">${b.name}</th><td>${b.timeZone}</td>
            <td class="num">${units(b.dailyBudget, unit.decimals, unit.symbol)}</td>
            <td class="num">${units(b.monthlyBudget, unit.decimals, unit.symbol)}</td>
            <td>${b.active ? 'yes' : 'no'}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No brands yet: a brand holds your campaigns and caps what they spend per day and month.</p>`}
    <h3>New brand</h3>
    <form @submit=${create}>
      <label>Brand name <input name="name" required maxlength="200" autocomplete="off"></label>
      <div><label for="brand-zone">Time zone</label>
        <select id="brand-zone" name="timeZone">${ZONES.map((z) => html`<option value=${z} ?selected=${z === HERE}>${z}</option>`)}</select></div>
      <label>Daily budget <input name="dailyBudget" inputmode="decimal" required autocomplete="off"></label>
      <label>Monthly budget <input name="monthlyBudget" inputmode="decimal" required autocomplete="off"></label>
      <p>Budgets cap billed spend per local day and month (the month at least the day), in ${unit.symbol}; days and
        months start at midnight in the brand's time zone, and so do the days of its analytics.</p>
      <div class="row"><button type="submit" ?disabled=${ctx.busy}>Create brand</button></div>
    </form>
  </section>`;
}

// ---- campaigns ----------------------------------------------------------------------------

function show(ctx: Ctx, campaign: Campaign): Promise<boolean> {
  return ctx.act(`Opening ${campaign.name}`, async () => {
    history.replaceState(null, '', `#campaign=${campaign.id}`);
    lastTx = null;
    return `Showing ${campaign.name}.`;
  });
}

function campaignsView(ctx: Ctx): TemplateResult {
  const tokenName = (address: Address) => tokens.find((t) => t.address.toLowerCase() === address.toLowerCase())?.symbol ?? shortAddress(address);
  const create = submit((form) => ctx.act('Creating the campaign', async () => {
    const campaign = await api.post<Campaign>('/v1/campaigns', {
      name: field(form, 'name'),
      brandId: field(form, 'brandId'),
      token: field(form, 'token'),
      startsAt: instant(form, 'startsAt', 'Starts at'),
      endsAt: instant(form, 'endsAt', 'Ends at'),
    }, { idempotencyKey: idempotencyKey() });
    history.replaceState(null, '', `#campaign=${campaign.id}`);
    return `Campaign ${campaign.name} created as a draft: fund its escrow, then schedule it.`;
  }));
  const in30Days = new Date(Date.now() + 30 * 86_400_000);
  return html`<section aria-labelledby="campaigns-title">
    <h2 id="campaigns-title">Campaigns</h2>
    ${brands.map((b) => {
      const mine = campaigns.filter((c) => c.brandId === b.id);
      return html`<h3>${b.name}</h3>
        ${mine.length
          ? html`<div class="table-wrap"><table>
              <thead><tr><th scope="col">Campaign</th><th scope="col">Status</th><th scope="col">Token</th>
                <th scope="col">Starts</th><th scope="col">Ends</th></tr></thead>
              <tbody>${mine.map((c) => html`<tr>
                <th scope="row"><button type="button" class="secondary" ?disabled=${ctx.busy}
                  aria-current=${detail?.campaign.id === c.id ? 'true' : nothing}
                  @click=${() => show(ctx, c)}>${c.name}</button></th>
                <td>${STATUS_WORDS[c.status]}</td><td>${tokenName(c.token)}</td>
                <td>${dateTime(c.startsAt)}</td><td>${dateTime(c.endsAt)}</td></tr>`)}</tbody>
            </table></div>`
          : html`<p>No campaigns under ${b.name} yet.</p>`}`;
    })}
    <h3>New campaign</h3>
    ${!brands.length
      ? html`<p>Create a brand first.</p>`
      : !tokens.length
        ? html`<p>No token has prices on this platform yet, so no campaign can pay in one: an admin sets them.</p>`
        : html`<form @submit=${create}>
            <label>Campaign name <input name="name" required maxlength="200" autocomplete="off"></label>
            <div><label for="campaign-brand">Brand</label>
              <select id="campaign-brand" name="brandId">${brands.map((b) => html`<option value=${b.id}>${b.name}</option>`)}</select></div>
            <div><label for="campaign-token">Token</label>
              <select id="campaign-token" name="token">${tokens.map((t) => html`<option value=${t.address}>${t.symbol} (${shortAddress(t.address)})</option>`)}</select></div>
            <label>Starts at <input name="startsAt" type="datetime-local" required value=${local(new Date())}></label>
            <label>Ends at <input name="endsAt" type="datetime-local" required value=${local(in30Days)}></label>
            <p>The token is fixed once the campaign exists. Its end is also its escrow's: what the campaign did not spend
              comes back after it and the grace period.</p>
            <div class="row"><button type="submit" ?disabled=${ctx.busy}>Create campaign</button></div>
          </form>`}
  </section>`;
}

/** The status changes an advertiser may ask for from `status`, as buttons. */
function statusActions(ctx: Ctx, c: Campaign): TemplateResult {
  const change = (to: Status, label: string, doing: string) => html`<button type="button" class=${to === 'COMPLETED' ? 'secondary' : ''}
    ?disabled=${ctx.busy}
    @click=${() => ctx.act(`${doing} ${c.name}`, async () => {
      const updated = await api.post<Campaign>(`/v1/campaigns/${c.id}/status`, { status: to });
      return `${updated.name} is ${STATUS_WORDS[updated.status].toLowerCase()}.`;
    })}>${label}</button>`;
  const buttons: TemplateResult[] = [];
  if (c.status === 'DRAFT') buttons.push(change('SCHEDULED', 'Schedule', 'Scheduling'));
  if (c.status === 'RUNNING') buttons.push(change('PAUSED', 'Pause', 'Pausing'));
  if (c.status === 'PAUSED') buttons.push(change('RUNNING', 'Resume', 'Resuming'));
  if (c.status !== 'COMPLETED') buttons.push(change('COMPLETED', 'Complete', 'Completing'));
  return buttons.length ? html`<div class="row">${buttons}</div>` : html`<p>Completed campaigns no longer change.</p>`;
}

function editView(ctx: Ctx, c: Campaign): TemplateResult | typeof nothing {
  if (c.status === 'COMPLETED') return nothing;
  const save = submit((form) => ctx.act(`Saving ${c.name}`, async () => {
    const priority = Number(field(form, 'priority'));
    if (!Number.isInteger(priority) || priority < 0 || priority > 100) throw new Error('Priority: a whole number from 0 to 100.');
    // Only what changed: the form shows times to the minute, and an untouched time must not
    // lose its seconds.
    const changes: Record<string, unknown> = {};
    if (field(form, 'name') !== c.name) changes.name = field(form, 'name');
    if (field(form, 'startsAt') !== local(new Date(c.startsAt))) changes.startsAt = instant(form, 'startsAt', 'Start');
    if (field(form, 'endsAt') !== local(new Date(c.endsAt))) changes.endsAt = instant(form, 'endsAt', 'End');
    if (priority !== c.priority) changes.priority = priority;
    if (!Object.keys(changes).length) return 'Nothing to save: no setting changed.';
    const updated = await api.patch<Campaign>(`/v1/campaigns/${c.id}`, changes);
    return `${updated.name} saved.`;
  }), false);
  // Property bindings: another campaign's values replace these, a re-render keeps what is typed.
  return html`<details><summary>Edit ${c.name}</summary>
    <form @submit=${save}>
      <label>Name <input name="name" required maxlength="200" autocomplete="off" .value=${c.name}></label>
      <label>Start <input name="startsAt" type="datetime-local" required .value=${local(new Date(c.startsAt))}></label>
      <label>End <input name="endsAt" type="datetime-local" required .value=${local(new Date(c.endsAt))}></label>
      <label>Priority <input name="priority" type="number" min="0" max="100" step="1" required .value=${String(c.priority)}></label>
      <p>Priority runs from 0 to 100; higher wins over expected revenue. An open escrow keeps the end it was opened with.</p>
      <div class="row"><button type="submit" ?disabled=${ctx.busy}>Save changes</button></div>
    </form></details>`;
}

// ---- the escrow ---------------------------------------------------------------------------

function txLine(ctx: Ctx): TemplateResult | typeof nothing {
  if (!lastTx) return nothing;
  return html`<p>${lastTx.what}: transaction ${txLink(ctx, lastTx.hash, 'last-tx')}</p>`;
}

function escrowView(ctx: Ctx, d: Detail): TemplateResult {
  const { campaign: c, token: t, chain } = d;
  const escrowAddress = ctx.config.escrow;
  if (!chain || !escrowAddress) {
    return html`<h3>Escrow</h3><p>This server does not say where its escrow contract is, so the page can neither read
      nor fund the campaign's escrow.</p>`;
  }
  const money = (v: bigint | string) => units(v, t.decimals, t.symbol);
  const id = c.chainCampaignId;
  const b = d.analytics.budget;
  const billedOverSettled = BigInt(b.billed) - BigInt(b.settled);
  const unsettled = billedOverSettled > 0n ? billedOverSettled : 0n;
  const chainNow = now() + d.skew;
  // After a transaction: its hash, once the API's figures have caught up with it.
  const done = async (what: string, hash: Hash) => {
    lastTx = { what, hash };
    const seen = await mirrorReaches(id, await blockOf(ctx.wallet!, hash));
    return `${what}: transaction ${hash}.${seen ? '' : ' The API has not seen it yet: its figures may lag.'}`;
  };

  const figures = html`<dl class="figures">
    <div><dt>In escrow (on chain)</dt><dd id="escrow-remaining">${escrow.isOpen(chain) ? money(chain.remaining) : 'not opened'}</dd></div>
    ${escrow.isOpen(chain) ? html`<div><dt>Escrow ends</dt><dd>${new Date(chain.end * 1000).toLocaleString()}</dd></div>` : nothing}
    <div><dt>Funded in total</dt><dd>${d.mirror ? money(d.mirror.funded) : '–'}</dd></div>
    <div><dt>Settled to hosters</dt><dd>${money(b.settled)}</dd></div>
    <div><dt>Billed, not yet settled</dt><dd id="escrow-unsettled">${money(unsettled)}</dd></div>
    <div><dt>Still to spend</dt><dd id="escrow-available">${money(b.available)}</dd></div>
    ${d.mirror && BigInt(d.mirror.withdrawn) > 0n ? html`<div><dt>Withdrawn</dt><dd>${money(d.mirror.withdrawn)}</dd></div>` : nothing}
    <div><dt>Your wallet holds</dt><dd>${money(d.balance)}</dd></div>
  </dl>
  <p>In escrow is what the contract holds now, read from the chain through your wallet. Billed but not
    yet settled is spend the ad server has counted that the next settlement will debit from it; still to spend is the
    difference, which is what the campaign may still buy.</p>`;

  let actions: TemplateResult;
  if (!escrow.isOpen(chain)) {
    const end = Math.floor(Date.parse(c.endsAt) / 1000);
    const fund = submit((form) => ctx.act('Funding the escrow: sign the permit in your wallet', async () => {
      const value = amount(form, 'budget', 'Budget', t);
      if (value > d.balance) throw new Error(`Budget: your wallet holds only ${money(d.balance)}.`);
      const opened = await escrow.open(ctx.wallet!, escrowAddress, id, c.token, value, end);
      return done(`Escrow funded with ${money(value)}${opened.permit ? ' (permit)' : ' (approval)'}`, opened.hash);
    }));
    actions = end <= chainNow
      ? html`<p>The campaign's end has passed, so its escrow can no longer be opened: move its end later to fund it.</p>`
      : html`<form @submit=${fund}>
          <label>Budget <input name="budget" inputmode="decimal" required autocomplete="off"></label>
          <p>The budget, in ${t.symbol}, stays locked in the escrow until ${new Date(end * 1000).toLocaleString()}: one
            signature (a permit) and one transaction.</p>
          <div class="row"><button type="submit" ?disabled=${ctx.busy}>Fund with permit</button></div>
        </form>`;
  } else if (chain.advertiser.toLowerCase() !== ctx.wallet!.account.toLowerCase()) {
    actions = html`<p>This escrow was opened by ${shortAddress(chain.advertiser)}; only that account can change it.</p>`;
  } else if (chain.end > chainNow) {
    const top = submit((form) => ctx.act('Topping up the escrow', async () => {
      const value = amount(form, 'topUp', 'Top-up amount', t);
      if (value > d.balance) throw new Error(`Top-up amount: your wallet holds only ${money(d.balance)}.`);
      return done(`Escrow topped up with ${money(value)}`, await escrow.topUp(ctx.wallet!, escrowAddress, id, c.token, value));
    }));
    const grace = ctx.config.gracePeriod;
    actions = html`<form @submit=${top}>
        <label>Top-up amount <input name="topUp" inputmode="decimal" required autocomplete="off"></label>
        <p>Adds to the escrow, with an approval first if the escrow's allowance is short.</p>
        <div class="row"><button type="submit" ?disabled=${ctx.busy}>Top up</button></div>
      </form>
      <p>Closing ends the escrow now, before its end date: hosters' last impressions are settled during the grace period${
        grace !== null ? html` (${countdown(grace)})` : nothing}, then you withdraw what is left.</p>
      <div class="row"><button type="button" class="secondary" ?disabled=${ctx.busy}
        @click=${() => ctx.act('Closing the escrow', async () => done('Escrow closed', await escrow.close(ctx.wallet!, escrowAddress, id)))}>Close campaign</button></div>`;
  } else if (chain.remaining === 0n) {
    actions = html`<p>The escrow has ended and holds nothing more.</p>`;
  } else {
    const left = waitLeft(ctx, d);
    actions = left === null || left > 0
      ? html`<p id="withdraw-countdown">The escrow has ended. Withdrawal opens in
          <strong>${left === null ? 'an unknown time' : countdown(left)}</strong>, after the grace period for the last settlements.</p>`
      : html`<p>The escrow has ended and its grace period is over: ${money(chain.remaining)} can come back to your wallet.</p>
          <div class="row"><button type="button" ?disabled=${ctx.busy}
            @click=${() => ctx.act('Withdrawing', async () => done(`Withdrew ${money(chain.remaining)}`, await escrow.withdraw(ctx.wallet!, escrowAddress, id)))}>Withdraw</button></div>`;
  }
  return html`<h3>Escrow</h3>${figures}${actions}${txLine(ctx)}`;
}

// ---- the campaign -------------------------------------------------------------------------

function detailView(ctx: Ctx, d: Detail): TemplateResult {
  const c = d.campaign;
  const a = d.analytics;
  const money = (v: string) => units(v, d.token.decimals, d.token.symbol);
  return html`<section class="card" aria-labelledby="campaign-title">
    <h2 id="campaign-title">${c.name}</h2>
    <dl class="figures">
      <div><dt>Status</dt><dd id="campaign-status">${STATUS_WORDS[c.status]}</dd></div>
      <div><dt>Brand</dt><dd>${d.brand?.name ?? '–'}</dd></div>
      <div><dt>Runs</dt><dd>${dateTime(c.startsAt)} to ${dateTime(c.endsAt)}</dd></div>
      <div><dt>Pays in</dt><dd>${d.token.symbol} <span class="mono">${shortAddress(c.token)}</span></dd></div>
      <div><dt>Escrow id</dt><dd class="mono">${c.chainCampaignId}</dd></div>
    </dl>
    ${statusActions(ctx, c)}
    ${editView(ctx, c)}
    ${escrowView(ctx, d)}
    <h3>Analytics</h3>
    <p>${a.from} to ${a.to}, days in ${a.timeZone} (the brand's time zone).</p>
    <dl class="figures">
      <div><dt>Spend</dt><dd>${money(a.totals.spend)}</dd></div>
      <div><dt>Impressions</dt><dd>${a.totals.impressions.toLocaleString('en-US')}</dd></div>
      <div><dt>Clicks</dt><dd>${a.totals.clicks.toLocaleString('en-US')}</dd></div>
      <div><dt>CTR</dt><dd>${(a.totals.ctr * 100).toFixed(2)}%</dd></div>
    </dl>
    ${charts(a, d.token)}
  </section>`;
}

start({
  title: 'Advertiser',
  role: 'advertiser',
  load,
  view: (ctx) => html`
    ${detail ? detailView(ctx, detail) : nothing}
    ${campaignsView(ctx)}
    ${brandsView(ctx)}`,
});
