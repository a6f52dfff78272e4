// What the programs page's sections share: the shape of a section, reads that may find
// nothing, tokens shown by their symbol, and the offer of a self-service role.

import { html, type TemplateResult } from 'lit-html';
import type { Address } from 'viem';
import { api, ApiError } from '../lib/api';
import { token, type Token } from '../lib/chain';
import { shortAddress, units } from '../lib/format';
import { roleButton, type Ctx } from '../lib/page';
import type { Role, User } from '../lib/session';

/** One program's section of the page. */
export interface Program {
  /** The section's id (its anchor) and heading. */
  id: string;
  title: string;
  /** Loads what the section shows for `me` (every action reloads it). */
  load(ctx: Ctx, me: User): Promise<void>;
  view(ctx: Ctx, me: User): TemplateResult;
}

/** A read that may have nothing to show: null when the API answers 404. */
export async function found<T>(path: string): Promise<T | null> {
  try {
    return await api.get<T>(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

const known = new Map<string, Token>();

/** Reads the symbol and decimals of every token in `addresses` not known yet. */
export async function learnTokens(ctx: Ctx, addresses: Iterable<string>): Promise<void> {
  const wallet = ctx.wallet;
  if (!wallet) return;
  const unknown = new Set([...addresses].map((a) => a.toLowerCase()).filter((a) => !known.has(a)));
  await Promise.all(
    [...unknown].map(async (address) => {
      known.set(address, await token(wallet, address as Address));
    }),
  );
}

/** A token learnt by `learnTokens`. */
export const tokenOf = (address: string): Token | undefined => known.get(address.toLowerCase());

/** An amount in base units of `tokenAddress`, with its symbol once the token is known. */
export function money(amount: string | bigint, tokenAddress: string): string {
  const t = tokenOf(tokenAddress);
  return t ? units(amount, t.decimals, t.symbol) : `${BigInt(amount).toLocaleString('en-US')} units of ${shortAddress(tokenAddress)}`;
}

/** A token by its symbol, with its address on hover. */
export const tokenName = (address: string): TemplateResult =>
  html`<span class="mono" title=${address}>${tokenOf(address)?.symbol ?? shortAddress(address)}</span>`;

/** `snake_case` or `camelCase` as words. */
export const words = (text: string): string =>
  text.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

/** What a section says when the user lacks `role`, with the button that takes it. */
export function roleOffer(ctx: Ctx, role: Role, why: string): TemplateResult {
  return html`<p>${why} It needs the ${role} role. ${roleButton(ctx, role, 'secondary')}</p>`;
}

/** One token's payout (`GET /v1/payouts`-shaped, in dashboards). */
export interface TokenPayout {
  token: string;
  held: { amount: string; until: string | null; note: string }[];
  released: string;
  pending: string;
  claimable: string;
  claimed: string;
}

/** Where one's earnings stand per token: held, released, pending, claimable, claimed. */
export function payoutsTable(tokens: TokenPayout[]): TemplateResult {
  if (!tokens.length) return html`<p>Nothing earned yet.</p>`;
  return html`<div class="table-wrap"><table>
    <thead><tr><th>Token</th><th class="num">Held</th><th class="num">Released</th><th class="num">Pending</th>
      <th class="num">Claimable</th><th class="num">Claimed</th></tr></thead>
    <tbody>${tokens.map((t) => {
      const held = t.held.reduce((sum, h) => sum + BigInt(h.amount), 0n);
      return html`<tr><td>${tokenName(t.token)}</td>
        <td class="num" title=${t.held.map((h) => h.note).join('; ')}>${money(held, t.token)}</td>
        <td class="num">${money(t.released, t.token)}</td><td class="num">${money(t.pending, t.token)}</td>
        <td class="num">${money(t.claimable, t.token)}</td><td class="num">${money(t.claimed, t.token)}</td></tr>`;
    })}</tbody>
  </table></div>`;
}
