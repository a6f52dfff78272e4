// What a viewer earned: rewards for ads shown while they held consent, paid out of the
// platform's share and claimable from the escrow like any payee's earnings.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hash, Hex } from 'viem';
import { api, poll } from '../lib/api';
import { send, token, type Token } from '../lib/chain';
import { units } from '../lib/format';
import type { Ctx } from '../lib/page';
import type { Wallet } from '../lib/wallet';

/** GET /v1/me/earnings: everything this wallet earned, in any role, per token. */
interface Balance {
  token: Address;
  earned: string;
  held: string;
}

/** GET /v1/payouts/{account}, the part a claim needs. */
interface Payouts {
  escrow: Address;
  tokens: { token: Address; claimable: string; pending: string; claimed: string; claimedTx: Hash | null; calldata: Hex | null }[];
}

/** GET /v1/statements/me (this month, UTC), the part with the viewer-rewards lines. */
interface Statement {
  statement: { startsOn: string; tokens: { token: Address; lines: { line: string; amount: string }[] }[] };
}

interface Row {
  token: Token;
  thisMonth: bigint;
  earned: bigint;
  held: bigint;
  pending: bigint;
  claimable: bigint;
  claimed: bigint;
  calldata: Hex | null;
}

export interface Rewards {
  month: string;
  escrow: Address | null;
  rows: Row[];
}

export async function loadRewards(wallet: Wallet, hasEscrow: boolean): Promise<Rewards> {
  const [earnings, payouts, statement] = await Promise.all([
    api.get<Balance[]>('/v1/me/earnings'),
    hasEscrow ? api.get<Payouts>(`/v1/payouts/${wallet.account}`, { anonymous: true }) : null,
    api.get<Statement>('/v1/statements/me?period=month'),
  ]);
  const addresses = new Set<string>(earnings.map((b) => b.token.toLowerCase()));
  for (const t of payouts?.tokens ?? []) addresses.add(t.token.toLowerCase());
  for (const t of statement.statement.tokens) addresses.add(t.token.toLowerCase());
  const same = (a: string) => (b: { token: string }) => b.token.toLowerCase() === a;
  const rows = await Promise.all(
    [...addresses].map(async (address): Promise<Row> => {
      const balance = earnings.find(same(address));
      const payout = payouts?.tokens.find(same(address));
      const lines = statement.statement.tokens.find(same(address))?.lines ?? [];
      return {
        token: await token(wallet, address as Address),
        thisMonth: lines.filter((l) => l.line === 'viewer_rewards').reduce((sum, l) => sum + BigInt(l.amount), 0n),
        earned: BigInt(balance?.earned ?? 0),
        held: BigInt(balance?.held ?? 0),
        pending: BigInt(payout?.pending ?? 0),
        claimable: BigInt(payout?.claimable ?? 0),
        claimed: BigInt(payout?.claimed ?? 0),
        calldata: payout?.calldata ?? null,
      };
    }),
  );
  return { month: statement.statement.startsOn.slice(0, 7), escrow: payouts?.escrow ?? null, rows };
}

/** Waits (a while) until the payouts of `account` show the claim `hash` of `address`. */
async function mirrored(account: Address, address: Address, hash: Hash): Promise<void> {
  await poll(
    () => api.get<Payouts>(`/v1/payouts/${account}`, { anonymous: true }),
    (payouts) =>
      payouts.tokens.find((t) => t.token.toLowerCase() === address.toLowerCase())?.claimedTx?.toLowerCase() ===
      hash.toLowerCase(),
    30_000,
  );
}

function claimButton(ctx: Ctx, rewards: Rewards, row: Row): TemplateResult | typeof nothing {
  const { escrow } = rewards;
  if (!escrow || !row.calldata || row.claimable === 0n) return nothing;
  const amount = units(row.claimable, row.token.decimals, row.token.symbol);
  const calldata = row.calldata;
  return html`<button type="button" ?disabled=${ctx.busy}
    @click=${() => ctx.act(`Claiming ${amount}: confirm the transaction in your wallet`, async () => {
      const wallet = ctx.wallet!;
      // The payouts' own calldata: AdEscrow.claim with this account's proof.
      const hash = await send(wallet, escrow, calldata);
      // Until the API's mirror has the claim, its payouts still offer it; a second claim
      // would only revert.
      await mirrored(wallet.account, row.token.address, hash);
      return `Claimed ${amount} in transaction ${hash}.`;
    })}>Claim ${amount}</button>`;
}

export function rewardsView(ctx: Ctx, rewards: Rewards | null): TemplateResult {
  const rows = rewards?.rows ?? [];
  const show = (row: Row, amount: bigint) => units(amount, row.token.decimals, row.token.symbol);
  return html`<section aria-labelledby="rewards-title">
    <h2 id="rewards-title">Rewards</h2>
    <p>While you hold the <strong>rewards</strong> consent (or the scope a campaign asks for), ads
      shown to you through your viewer id pay you a share of their price, out of the platform's
      share. Rewards are released, settled on chain in the escrow's payout root, then yours to claim.</p>
    ${rows.length
      ? html`<div class="table-wrap"><table>
          <thead><tr>
            <th scope="col">Token</th>
            <th scope="col" class="num">Viewer rewards in ${rewards!.month}</th>
            <th scope="col" class="num">Earned, all roles</th>
            <th scope="col" class="num">Held</th>
            <th scope="col" class="num">Waiting for settlement</th>
            <th scope="col" class="num">Claimable now</th>
            <th scope="col" class="num">Claimed</th>
          </tr></thead>
          <tbody>${rows.map((row) => html`<tr>
            <th scope="row">${row.token.symbol}</th>
            <td class="num">${show(row, row.thisMonth)}</td>
            <td class="num">${show(row, row.earned)}</td>
            <td class="num">${show(row, row.held)}</td>
            <td class="num">${show(row, row.pending)}</td>
            <td class="num">${show(row, row.claimable)}</td>
            <td class="num">${show(row, row.claimed)}</td>
          </tr>`)}</tbody>
        </table></div>
        <div class="row">${rows.map((row) => claimButton(ctx, rewards!, row))}</div>
        <p>Claiming is an ordinary transaction from your wallet, so it costs gas;
          the tokens go to your wallet. Hosters claim the same way on the <a href="/app/hoster/">hoster page</a>.</p>`
      : html`<p>Nothing earned yet.</p>`}
  </section>`;
}
