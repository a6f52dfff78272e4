// The claim: what the escrow owes the hoster per token (the API's payee index, cumulative
// amount and Merkle proof), one `AdEscrow.claim` transaction from the wallet to take it, the
// wallet's token balance before and after, and the claims the chain mirror has seen.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hex } from 'viem';
import { api, poll } from '../lib/api';
import { balanceOf } from '../lib/chain';
import * as escrow from '../lib/escrow';
import { txLink, type Ctx } from '../lib/page';
import { amount, symbolOf } from './tokens';

interface TokenPayout {
  token: Address;
  /** The payee's index in the escrow; none until its first leaf is claimable. */
  index: number | null;
  cumulative: string;
  claimed: string;
  claimedTx: Hex | null;
  claimable: string;
  /** Released but not claimable yet (unsettled, or in a challenge window). */
  pending: string;
  proof: Hex[];
}

interface Payouts {
  account: Address;
  escrow: Address;
  epoch: number | null;
  tokens: TokenPayout[];
}

interface ClaimedBalance {
  token: Address;
  claimed: string;
  block: number;
  final: boolean;
}

interface LastClaim {
  token: Address;
  before: bigint;
  after: bigint;
  tx: Hex;
}

let payouts: Payouts | null = null;
let claims: ClaimedBalance[] = [];
const balances = new Map<string, bigint>();
let last: LastClaim | null = null;

/** How long a claim waits for the chain mirror to show it, so the history includes it. */
const MIRROR_WAIT_MS = 30_000;


/** The tokens the payouts and claims name, for their symbols. */
export const payoutTokens = (): Address[] => [
  ...(payouts?.tokens.map((t) => t.token) ?? []),
  ...claims.map((c) => c.token),
];

export async function loadPayouts(ctx: Ctx): Promise<void> {
  const account = ctx.wallet!.account;
  [payouts, claims] = await Promise.all([
    api.get<Payouts>(`/v1/payouts/${account}`),
    api.get<ClaimedBalance[]>(`/v1/escrow/claims/${account}`),
  ]);
  const read = await Promise.all(payouts.tokens.map((t) => balanceOf(ctx.wallet!, t.token, account)));
  payouts.tokens.forEach((t, i) => balances.set(t.token.toLowerCase(), read[i]));
}

/** Waits until the API's mirror of the chain shows `cumulative` claimed for `token`. */
async function mirrored(account: Address, token: Address, cumulative: bigint): Promise<boolean> {
  const seen = await poll(
    () => api.get<ClaimedBalance[]>(`/v1/escrow/claims/${account}`),
    (claims) => claims.some((c) => c.token.toLowerCase() === token.toLowerCase() && BigInt(c.claimed) >= cumulative),
    MIRROR_WAIT_MS,
  );
  return seen.done;
}

async function claim(ctx: Ctx, p: TokenPayout): Promise<string> {
  const wallet = ctx.wallet!;
  const { account, escrow: escrowAddress } = payouts!;
  if (p.index === null || !p.proof.length) throw new Error('Nothing of this token is settled for you yet.');
  const cumulative = BigInt(p.cumulative);
  const before = await balanceOf(wallet, p.token, account);
  const hash = await escrow.claim(wallet, escrowAddress, account, p.token, BigInt(p.index), cumulative, p.proof);
  const after = await balanceOf(wallet, p.token, account);
  last = { token: p.token, before, after, tx: hash };
  const paid = `Claimed ${amount(after - before, p.token)}: your balance went from ${amount(before, p.token)} to ${amount(after, p.token)}.`;
  return (await mirrored(account, p.token, cumulative))
    ? paid
    : `${paid} The history below shows it once the API has seen the block.`;
}

function tokenCard(ctx: Ctx, p: TokenPayout): TemplateResult {
  const claimable = BigInt(p.claimable);
  const symbol = symbolOf(p.token);
  const key = p.token.toLowerCase();
  return html`<div class="card" role="group" aria-label=${`${symbol} payout`}>
    <h3>${symbol}</h3>
    <dl class="figures">
      <div><dt>Claimable now</dt><dd id=${`claimable-${key}`} data-amount=${p.claimable}>${amount(claimable, p.token)}</dd></div>
      <div><dt>Not claimable yet</dt><dd>${amount(p.pending, p.token)}</dd></div>
      <div><dt>Claimed so far</dt><dd>${amount(p.claimed, p.token)}</dd></div>
      <div><dt>In your wallet</dt><dd id=${`balance-${key}`}>${balances.has(key) ? amount(balances.get(key)!, p.token) : '–'}</dd></div>
    </dl>
    ${claimable > 0n && p.index !== null
      ? html`<button type="button" ?disabled=${ctx.busy}
          @click=${() => ctx.act(`Claiming ${amount(claimable, p.token)}: confirm the transaction in your wallet`, () => claim(ctx, p))}
          >Claim ${symbol}</button>`
      : html`<p>Nothing to claim now.</p>`}
  </div>`;
}

function lastClaim(ctx: Ctx): TemplateResult | typeof nothing {
  if (!last) return nothing;
  return html`<div class="card" id="last-claim" role="region" aria-labelledby="last-claim-title">
    <h3 id="last-claim-title">Your claim</h3>
    <dl class="figures">
      <div><dt>Balance before</dt><dd id="balance-before">${amount(last.before, last.token)}</dd></div>
      <div><dt>Balance after</dt><dd id="balance-after">${amount(last.after, last.token)}</dd></div>
      <div><dt>Paid</dt><dd>${amount(last.after - last.before, last.token)}</dd></div>
    </dl>
    <p>Transaction: ${txLink(ctx, last.tx)}</p>
  </div>`;
}

function history(ctx: Ctx): TemplateResult {
  if (!claims.length) return html`<p>No claims yet.</p>`;
  const txOf = (token: Address) => payouts?.tokens.find((t) => t.token.toLowerCase() === token.toLowerCase())?.claimedTx;
  return html`<div class="table-wrap"><table id="claims">
    <thead><tr><th scope="col">Token</th><th scope="col" class="num">Claimed in all</th>
      <th scope="col">Latest claim's transaction</th><th scope="col">Block</th></tr></thead>
    <tbody>${claims.map((c) => {
      const tx = txOf(c.token);
      return html`<tr>
        <th scope="row">${symbolOf(c.token)}</th>
        <td class="num">${amount(c.claimed, c.token)}</td>
        <td>${tx ? txLink(ctx, tx) : '–'}</td>
        <td>${c.block}${c.final ? ' (final)' : ''}</td>
      </tr>`;
    })}</tbody>
  </table></div>`;
}

export function claimView(ctx: Ctx): TemplateResult {
  return html`<section aria-labelledby="claim-title">
    <h2 id="claim-title">Claim your earnings</h2>
    <p>Settled earnings wait in the escrow; a claim sends them to your wallet in one transaction.
      ${payouts?.epoch != null ? `Claims use settlement epoch ${payouts.epoch}.` : 'No epoch is settled yet.'}</p>
    ${payouts?.tokens.length ? payouts.tokens.map((p) => tokenCard(ctx, p)) : html`<p>Nothing earned yet.</p>`}
    ${lastClaim(ctx)}
    <h3>Claim history</h3>
    ${history(ctx)}
  </section>`;
}
