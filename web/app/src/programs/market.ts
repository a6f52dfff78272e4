// The marketplace: search the listing and open an item; buy it with one permit signature
// and one transaction (`openCampaignWithPermit` into the order's own escrow), then wait
// for the indexer to mirror the funding, which pays the order and issues the license; one's
// orders, licenses and download links. Sellers list their items and sales, create drafts,
// add files and publish.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hex } from 'viem';
import { api, ApiError, idempotencyKey, poll } from '../lib/api';
import * as escrow from '../lib/escrow';
import { dateTime, parseAmount, shortAddress } from '../lib/format';
import type { Ctx } from '../lib/page';
import type { User } from '../lib/session';
import { field, onSubmit } from '../lib/form';
import { learnTokens, money, payoutsTable, roleOffer, tokenOf, words, type Program, type TokenPayout } from './common';

const CATEGORIES = ['creative_template', 'audience_research', 'data_set', 'software', 'other'] as const;

interface Price {
  token: Address;
  price: string;
}

interface FileInfo {
  id: string;
  name: string;
  size: number;
}

interface Item {
  id: string;
  seller: Address;
  title: string;
  description: string;
  category: string;
  tags: string[];
  prices: Price[];
  feeBps: number;
  activationLimit: number;
  licenseDays: number | null;
  state: string;
  files: FileInfo[];
}

interface Order {
  id: string;
  itemId: string;
  itemTitle: string;
  buyer: Address;
  chainEscrowId: Hex;
  token: Address;
  price: string;
  state: 'awaiting_payment' | 'paid' | 'refused' | 'refunded';
  refusedReason: string | null;
  payBy: string;
  paidAt: string | null;
  createdAt: string;
}

/**
 * A new order and how to pay it: the escrow and the end of the order's escrow account. (The
 * API also offers the permit's typed data; the page reads the same terms from the token, as
 * it does to fund a campaign.)
 */
interface Purchase {
  order: { id: string; chainEscrowId: Hex; token: Address; price: string };
  payment: { escrow: Address; end: number };
}

interface License {
  id: string;
  orderId: string;
  itemId: string;
  key: string;
  activationLimit: number;
  activations: number;
  expiresAt: string | null;
  valid: boolean;
}

interface Link {
  file: FileInfo;
  token: string;
  expiresAt: string;
}

interface SellerDashboard {
  items: Item[];
  sales: { period: string; token: Address; orders: number; gross: string; proceeds: string; refunds: number }[];
  orders: Order[];
  payouts: { tokens: TokenPayout[] };
}

/** What the listing was searched for, kept across reloads. */
const search = { q: '', category: '' };
let listing: Item[] = [];
let selected: Item | null = null;
let orders: Order[] = [];
let licenses: License[] = [];
/** The items of one's paid orders, for their files. */
const bought = new Map<string, Item>();
/** Download links asked for, by `order/file`. */
const links = new Map<string, Link>();
let seller: SellerDashboard | null = null;

/** How long the page waits for the indexer to mirror a payment. */
const MIRROR_WAIT_MS = 60_000;

/** Published items matching `search`, newest first (the first page). */
async function searched(): Promise<Item[]> {
  const query = new URLSearchParams();
  if (search.q) query.set('q', search.q);
  if (search.category) query.set('category', search.category);
  return (await api.get<{ items: Item[] }>(`/v1/market/items?${query}`, { anonymous: true })).items;
}

export const marketProgram: Program = {
  id: 'market',
  title: 'Marketplace',
  async load(ctx, me) {
    const buyer = me.roles.includes('buyer');
    const [found, mine, held, dashboard] = await Promise.all([
      searched(),
      buyer ? api.get<Order[]>('/v1/market/orders') : [],
      buyer ? api.get<License[]>('/v1/market/licenses') : [],
      me.roles.includes('seller') ? api.get<SellerDashboard>('/v1/market/seller/dashboard') : null,
    ]);
    listing = found;
    orders = mine;
    licenses = held;
    seller = dashboard;
    // The files of what one bought: an item no longer for sale has none to give.
    const paid = orders.filter((o) => o.state === 'paid' && !bought.has(o.itemId));
    await Promise.all(
      paid.map(async (o) => {
        try {
          bought.set(o.itemId, await api.get<Item>(`/v1/market/items/${o.itemId}`, { anonymous: true }));
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 404)) throw error;
        }
      }),
    );
    await learnTokens(ctx, [
      ...listing.flatMap((i) => i.prices.map((p) => p.token)),
      ...orders.map((o) => o.token),
      ...(seller?.orders.map((o) => o.token) ?? []),
      ...(seller?.items.flatMap((i) => i.prices.map((p) => p.token)) ?? []),
      ...(seller?.payouts.tokens.map((t) => t.token) ?? []),
    ]);
  },
  view(ctx, me) {
    return html`
      <h3>Find items</h3>
      <form @submit=${onSubmit((form) => {
        search.q = field(form, 'q');
        search.category = field(form, 'category');
        selected = null;
        ctx.act('Searching', async () => {
          const found = (await searched()).length;
          return `${found} item${found === 1 ? '' : 's'} found.`;
        });
      })}>
        <label>Search <input name="q" type="search" .value=${search.q} placeholder="banner templates"></label>
        <label for="market-category">Category</label>
        <select id="market-category" name="category">
          <option value="">Any</option>
          ${CATEGORIES.map((c) => html`<option value=${c} ?selected=${search.category === c}>${words(c)}</option>`)}
        </select>
        <div><button type="submit" ?disabled=${ctx.busy}>Search</button></div>
      </form>
      ${listingView(ctx)}
      ${selected ? itemView(ctx, me, selected) : nothing}
      <h3>Your purchases</h3>
      ${me.roles.includes('buyer') ? purchasesView(ctx) : roleOffer(ctx, 'buyer', 'Buying items from your wallet.')}
      <h3>Your shop</h3>
      ${seller ? sellerView(ctx, seller) : roleOffer(ctx, 'seller', 'Selling items here.')}`;
  },
};

const prices = (item: Item) => item.prices.map((p) => money(p.price, p.token)).join(', ');

function listingView(ctx: Ctx): TemplateResult {
  if (!listing.length) return html`<p>No item matches.</p>`;
  return html`<div class="table-wrap"><table>
    <thead><tr><th>Item</th><th>Category</th><th class="num">Price</th><th></th></tr></thead>
    <tbody>${listing.map((item) => html`<tr>
      <td>${item.title}</td><td>${words(item.category)}</td><td class="num">${prices(item)}</td>
      <td><button type="button" class="secondary" ?disabled=${ctx.busy}
        @click=${() => ctx.act(`Opening ${item.title}`, async () => {
          selected = await api.get<Item>(`/v1/market/items/${item.id}`, { anonymous: true });
          return `${item.title}: its details are below the listing.`;
        })}>Details</button></td></tr>`)}</tbody>
  </table></div>`;
}

function itemView(ctx: Ctx, me: User, item: Item): TemplateResult {
  const own = item.seller.toLowerCase() === me.address.toLowerCase();
  let buy: TemplateResult;
  if (own) buy = html`<p>This is your item.</p>`;
  else if (!me.roles.includes('buyer')) buy = roleOffer(ctx, 'buyer', 'Buying it from your wallet.');
  else {
    buy = html`<div class="row">${item.prices.map((p) => html`<button type="button" ?disabled=${ctx.busy}
      @click=${() => ctx.act(`Buying ${item.title}`, () => buyItem(ctx, item, p))}>Buy for ${money(p.price, p.token)}</button>`)}</div>
      <p>One signature (a permit for exactly the price) and one transaction into the order's own escrow.</p>`;
  }
  return html`<div class="card" id="item-detail">
    <h3>${item.title}</h3>
    <p>${item.description}</p>
    <dl class="figures">
      <div><dt>Category</dt><dd>${words(item.category)}</dd></div>
      <div><dt>Seller</dt><dd class="mono" title=${item.seller}>${shortAddress(item.seller)}</dd></div>
      <div><dt>License</dt><dd>${item.activationLimit} device${item.activationLimit === 1 ? '' : 's'},
        ${item.licenseDays ? `${item.licenseDays} days` : 'perpetual'}</dd></div>
      <div><dt>Files</dt><dd>${item.files.map((f) => `${f.name} (${f.size} bytes)`).join(', ') || 'none'}</dd></div>
      ${item.tags.length ? html`<div><dt>Tags</dt><dd>${item.tags.join(', ')}</dd></div>` : nothing}
    </dl>
    ${buy}
  </div>`;
}

/**
 * Orders `item` in `price`'s token and pays it into the order's escrow account (one permit
 * signature and one transaction; approve then open for a token without permits), then waits
 * until the indexer has mirrored the escrow and the order shows paid.
 */
async function buyItem(ctx: Ctx, item: Item, price: Price): Promise<string> {
  const { order, payment } = await api.post<Purchase>(
    '/v1/market/orders',
    { itemId: item.id, token: price.token },
    { idempotencyKey: idempotencyKey() },
  );
  await escrow.open(ctx.wallet!, payment.escrow, order.chainEscrowId, order.token, BigInt(order.price), payment.end);
  return waitUntilPaid(order.id, item.title);
}

async function waitUntilPaid(orderId: string, title: string): Promise<string> {
  const { answer: order } = await poll(
    () => api.get<Order>(`/v1/market/orders/${orderId}`),
    (order) => order.state === 'paid' || order.state === 'refused',
    MIRROR_WAIT_MS,
  );
  if (order.state === 'paid') return `Paid: ${title} is yours; its license is below.`;
  if (order.state === 'refused') throw new Error(`The payment was refused: ${order.refusedReason ?? 'no reason given'}.`);
  return `Paid on chain: the order shows paid once the indexer has seen the transaction.`;
}

const STATES: Record<Order['state'], string> = {
  awaiting_payment: 'awaiting payment',
  paid: 'paid',
  refused: 'payment refused',
  refunded: 'refunded',
};

function purchasesView(ctx: Ctx): TemplateResult {
  if (!orders.length) return html`<p>You have bought nothing yet.</p>`;
  const titles = new Map(orders.map((o) => [o.id, o.itemTitle]));
  return html`<div class="table-wrap"><table id="orders">
      <thead><tr><th>Item</th><th class="num">Price</th><th>State</th><th>Escrow</th><th>Files</th></tr></thead>
      <tbody>${orders.map((o) => html`<tr>
        <td>${o.itemTitle}</td><td class="num">${money(o.price, o.token)}</td>
        <td>${STATES[o.state]}${o.state === 'paid' && o.paidAt ? ` ${dateTime(o.paidAt)}` : ''}
          ${o.state === 'awaiting_payment' ? ` until ${dateTime(o.payBy)}` : ''}${o.refusedReason ? `: ${o.refusedReason}` : ''}</td>
        <td class="mono" title=${o.chainEscrowId}>${shortAddress(o.chainEscrowId)}</td>
        <td>${o.state === 'paid' ? filesOf(ctx, o) : ''}</td></tr>`)}</tbody>
    </table></div>
    <h3>Your licenses</h3>
    ${licenses.length
      ? html`<div class="table-wrap"><table id="licenses">
          <thead><tr><th>Item</th><th>Key</th><th>Devices</th><th>Standing</th></tr></thead>
          <tbody>${licenses.map((l) => html`<tr>
            <td>${titles.get(l.orderId) ?? l.itemId}</td>
            <td><details><summary class="mono">${l.key.slice(0, 12)}…</summary><span class="mono">${l.key}</span></details></td>
            <td>${l.activations} of ${l.activationLimit}</td>
            <td>${l.valid ? 'valid' : 'not valid'}${l.expiresAt ? ` until ${dateTime(l.expiresAt)}` : ''}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No license yet: one is issued when an order is paid.</p>`}`;
}

function filesOf(ctx: Ctx, order: Order): TemplateResult[] {
  return (bought.get(order.itemId)?.files ?? []).map((file) => {
    const link = links.get(`${order.id}/${file.id}`);
    return link && Date.parse(link.expiresAt) > Date.now()
      ? html`<a href=${`/v1/market/downloads/${encodeURIComponent(link.token)}`} download=${file.name}>Download ${file.name}</a> `
      : html`<button type="button" class="secondary" ?disabled=${ctx.busy}
          @click=${() => ctx.act(`Asking for a link to ${file.name}`, async () => {
            const made = await api.post<Link>(`/v1/market/orders/${order.id}/files/${file.id}/link`, {});
            links.set(`${order.id}/${file.id}`, made);
            return `The link to ${file.name} works until ${dateTime(made.expiresAt)}.`;
          })}>Link to ${file.name}</button> `;
  });
}

function sellerView(ctx: Ctx, d: SellerDashboard): TemplateResult {
  return html`
    ${d.items.length
      ? html`<div class="table-wrap"><table id="seller-items">
          <thead><tr><th>Item</th><th>State</th><th class="num">Price</th><th>Files</th><th></th></tr></thead>
          <tbody>${d.items.map((item) => html`<tr>
            <td>${item.title}</td><td>${item.state}</td><td class="num">${prices(item)}</td>
            <td>${item.files.map((f) => f.name).join(', ')}</td><td>${itemActions(ctx, item)}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>You list no item yet.</p>`}
    ${newItemForm(ctx)}
    <h4>Orders of your items</h4>
    ${d.orders.length
      ? html`<div class="table-wrap"><table id="seller-orders">
          <thead><tr><th>Item</th><th>Buyer</th><th class="num">Price</th><th>State</th><th>Ordered</th></tr></thead>
          <tbody>${d.orders.map((o) => html`<tr><td>${o.itemTitle}</td>
            <td class="mono" title=${o.buyer}>${shortAddress(o.buyer)}</td><td class="num">${money(o.price, o.token)}</td>
            <td>${STATES[o.state]}</td><td>${dateTime(o.createdAt)}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No order yet.</p>`}
    <h4>Sales</h4>
    ${d.sales.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th>Month</th><th class="num">Orders</th><th class="num">Gross</th><th class="num">Your proceeds</th><th class="num">Refunds</th></tr></thead>
          <tbody>${d.sales.map((s) => html`<tr><td>${s.period}</td><td class="num">${s.orders}</td>
            <td class="num">${money(s.gross, s.token)}</td><td class="num">${money(s.proceeds, s.token)}</td>
            <td class="num">${s.refunds}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No sale yet.</p>`}
    <h4>Your proceeds</h4>
    ${payoutsTable(d.payouts.tokens)}`;
}

function itemActions(ctx: Ctx, item: Item): TemplateResult | typeof nothing {
  if (item.state === 'retired') return nothing;
  const fileId = `file-${item.id}`;
  return html`<div class="row">
    <label>File for ${item.title} <input id=${fileId} type="file"></label>
    <button type="button" class="secondary" ?disabled=${ctx.busy}
      @click=${() => ctx.act(`Adding a file to ${item.title}`, async () => {
        const input = document.getElementById(fileId) as HTMLInputElement;
        const file = input.files?.[0];
        if (!file) throw new ApiError(422, 'Choose a file first', undefined, 'file');
        await api.post(`/v1/market/items/${item.id}/files?name=${encodeURIComponent(file.name)}`, file);
        input.value = '';
        return `${file.name} added to ${item.title}.`;
      })}>Add file</button>
    ${item.state !== 'published'
      ? html`<button type="button" ?disabled=${ctx.busy}
          @click=${() => ctx.act(`Publishing ${item.title}`, async () => {
            await api.patch(`/v1/market/items/${item.id}`, { state: 'published' });
            return `${item.title} is listed.`;
          })}>Publish</button>`
      : nothing}
  </div>`;
}

function newItemForm(ctx: Ctx): TemplateResult {
  const known = listing.flatMap((i) => i.prices.map((p) => p.token))[0] ?? '';
  return html`<details id="new-item"><summary>List a new item</summary>
    <form @submit=${onSubmit((form) => {
      const [title, description, category, priceText, tokenText] =
        ['title', 'description', 'category', 'price', 'token'].map((n) => field(form, n));
      ctx.act('Creating a draft', async () => {
        if (!/^0x[0-9a-fA-F]{40}$/.test(tokenText)) throw new ApiError(422, 'Not a token address', undefined, 'token');
        await learnTokens(ctx, [tokenText]);
        const price = parseAmount(priceText, tokenOf(tokenText)!.decimals);
        if (!price) throw new ApiError(422, `Not an amount of ${tokenOf(tokenText)!.symbol}`, undefined, 'price');
        await api.post('/v1/market/items',
          { title, description, category, prices: [{ token: tokenText, price: price.toString() }] },
          { idempotencyKey: idempotencyKey() });
        return `Draft ${title} made: add a file, then publish it.`;
      }).then((made) => made && form.reset());
    })}>
      <label>Title <input name="title" required maxlength="200"></label>
      <label>Description <textarea name="description" rows="3" maxlength="10000"></textarea></label>
      <label for="item-category">Item category</label>
      <select id="item-category" name="category">${CATEGORIES.map((c) => html`<option value=${c}>${words(c)}</option>`)}</select>
      <label>Price <input name="price" inputmode="decimal" required placeholder="5"></label>
      <label>Price token <input name="token" class="mono" required .value=${known} placeholder="0x…"></label>
      <div><button type="submit" ?disabled=${ctx.busy}>Create draft</button></div>
    </form>
  </details>`;
}
