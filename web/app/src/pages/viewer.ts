// The viewer page: the pseudonymous viewer id hosters see instead of the wallet, consent per
// scope granted and revoked with one signature and no gas (the relayer pays), and the
// rewards that consent earns.

import { html, nothing, type TemplateResult } from 'lit-html';
import type { Address, Hex } from 'viem';
import { getBalance } from 'viem/actions';
import { api } from '../lib/api';
import { units } from '../lib/format';
import { start, type Ctx } from '../lib/page';
import {
  change,
  expiryOnChain,
  parseScope,
  REWARDS,
  scopeName,
  scopeOf,
  type Change,
  type MirroredConsent,
  type Scope,
} from '../viewer/consent';
import { loadRewards, rewardsView, type Rewards } from '../viewer/rewards';

const DAYS = [30, 90, 365];
const OTHER = 'other';

let viewerId: string | null = null;
let scopes: Scope[] = [];
/** Per scope: the registry's expiry (unix seconds, 0 for none) and the API mirror's record. */
let onChain = new Map<Hex, bigint>();
let mirrored = new Map<Hex, MirroredConsent>();
let balance = 0n;
let rewards: Rewards | null = null;
/** The latest grant or revocation, from its signature to its confirmation. */
let last: Change | null = null;
/** Scopes typed in this visit, listed even before the mirror has them. */
const typed: Scope[] = [];
// The grant form.
let chosen: string = REWARDS.id;
let other = '';
let days = '90';

const when = (seconds: bigint | number) => new Date(Number(seconds) * 1000).toLocaleString();
const now = () => BigInt(Math.floor(Date.now() / 1000));
const eth = (wei: bigint) => units(wei, 18, 'ETH');

start({
  title: 'Viewer',
  role: 'viewer',
  async load(ctx) {
    const wallet = ctx.wallet!;
    const registry = ctx.config.consent;
    viewerId ??= (await api.post<{ viewerId: string }>('/v1/me/viewer-id', {})).viewerId;
    const [records, wei, earned] = await Promise.all([
      api.get<MirroredConsent[]>(`/v1/consent/${wallet.account}`, { anonymous: true }),
      getBalance(wallet.client, { address: wallet.account }),
      loadRewards(wallet, !!ctx.config.escrow),
    ]);
    mirrored = new Map(records.map((r) => [r.scope.toLowerCase() as Hex, r]));
    const known = new Map<Hex, Scope>();
    for (const scope of [REWARDS, ...records.map((r) => scopeOf(r.scope)), ...typed]) known.set(scope.id, scope);
    scopes = [...known.values()];
    onChain = registry
      ? new Map(await Promise.all(scopes.map(async (s) => [s.id, await expiryOnChain(wallet, registry, s)] as const)))
      : new Map();
    balance = wei;
    rewards = earned;
  },
  view: (ctx) => html`${viewerIdView()}${consentView(ctx)}${rewardsView(ctx, rewards)}`,
});

function viewerIdView(): TemplateResult {
  return html`<section aria-labelledby="viewer-id-title">
    <h2 id="viewer-id-title">Your viewer id</h2>
    <p class="mono" id="viewer-id">${viewerId}</p>
    <p>Give this id to the sites you browse. They pass it with each ad request so that your
      consent below counts. Hosters only ever see this pseudonymous id: never your wallet
      address, your balance or anything else about you.</p>
  </section>`;
}

/**
 * Grants or revokes what `pick` says (a scope, and an expiry unless it is a revocation):
 * one signature, no gas. `pick` runs inside the action, so a bad scope becomes the alert.
 */
function signChange(ctx: Ctx, registry: Address, doing: string, pick: () => [Scope, bigint | null]): Promise<boolean> {
  return ctx.act(`${doing}: sign the message in your wallet, then the relayer records it on chain`, async () => {
    last = null;
    const [scope, expiry] = pick();
    const done = await change(ctx.wallet!, ctx.config.chainId, registry, scope, expiry, (progress) => {
      last = progress;
      ctx.render();
    });
    const what = expiry === null ? 'revoked' : `granted until ${when(expiry)}`;
    return `Consent to ${scopeName(scope)} ${what}, in transaction ${done.request!.txHash}. No gas was spent.`;
  });
}

function state(scope: Scope): TemplateResult {
  const expiry = onChain.get(scope.id) ?? 0n;
  if (expiry > now()) return html`Granted until ${when(expiry)}`;
  return html`${expiry > 0n ? `Expired ${when(expiry)}` : 'Not granted'}`;
}

function mirror(scope: Scope): string {
  const record = mirrored.get(scope.id);
  if (!record) return 'Nothing recorded';
  const said = record.active ? `Active until ${when(record.expiry!)}` : record.expiry ? 'Expired' : 'Revoked';
  return `${said} (block ${record.block}${record.final ? ', final' : ''})`;
}

function changeView(c: Change): TemplateResult {
  const request = c.request;
  const status = request?.status === 'confirmed' ? 'confirmed' : `pending (${request?.status ?? 'signing'})`;
  const verb = c.action === 'grant' ? 'Grant of' : 'Revocation of';
  return html`<div class="card" aria-live="polite">
    <h3>${verb} ${scopeName(c.scope)}</h3>
    <p>Request <span class="mono">${request?.digest}</span>: <strong id="consent-status">${status}</strong></p>
    ${request?.txHash ? html`<p>Relayed in transaction <span class="mono" id="consent-tx">${request.txHash}</span></p>` : nothing}
    <dl class="figures">
      <div><dt>Your ETH before</dt><dd>${eth(c.before)}</dd></div>
      ${c.after === null ? nothing : html`<div><dt>Your ETH after</dt><dd>${eth(c.after)}</dd></div>`}
    </dl>
    ${c.after === null
      ? nothing
      : c.after === c.before
        ? html`<p id="gas-note">No gas was spent: your ETH balance is exactly what it was. The relayer sent the transaction and paid for it.</p>`
        : html`<p id="gas-note">Your ETH balance moved by ${eth(c.after - c.before)} meanwhile, from something else: this consent spent no gas.</p>`}
  </div>`;
}

function grantForm(ctx: Ctx, registry: Address): TemplateResult {
  const submit = (event: Event) => {
    event.preventDefault();
    return signChange(ctx, registry, 'Granting consent', () => {
      const scope = chosen === OTHER ? parseScope(other) : scopeOf(chosen as Hex);
      if (!typed.some((s) => s.id === scope.id)) typed.push(scope);
      // The scope is listed from now on: the form shows it chosen rather than typed.
      chosen = scope.id;
      other = '';
      return [scope, now() + BigInt(Number(days) * 86_400)];
    });
  };
  return html`<form @submit=${submit}>
    <h3>Grant consent</h3>
    <div>
      <label for="grant-scope">Scope</label>
      <select id="grant-scope" @change=${(e: Event) => { chosen = (e.target as HTMLSelectElement).value; ctx.render(); }}>
        ${scopes.map((s) => html`<option value=${s.id} ?selected=${chosen === s.id}>${scopeName(s)}</option>`)}
        <option value=${OTHER} ?selected=${chosen === OTHER}>Another purpose or scope…</option>
      </select>
    </div>
    ${chosen === OTHER
      ? html`<div>
          <label for="grant-purpose">Purpose or scope</label>
          <input id="grant-purpose" autocomplete="off" aria-describedby="grant-purpose-hint" .value=${other}
            @input=${(e: Event) => (other = (e.target as HTMLInputElement).value)}>
          <p id="grant-purpose-hint">A purpose a site asked you for, or the bytes32 scope (0x and 64 hex digits) a campaign names.</p>
        </div>`
      : nothing}
    <div>
      <label for="grant-days">Lasts</label>
      <select id="grant-days" @change=${(e: Event) => (days = (e.target as HTMLSelectElement).value)}>
        ${DAYS.map((d) => html`<option value=${d} ?selected=${days === String(d)}>${d} days</option>`)}
      </select>
    </div>
    <button type="submit" ?disabled=${ctx.busy}>Grant consent</button>
  </form>`;
}

function consentView(ctx: Ctx): TemplateResult {
  const registry = ctx.config.consent;
  if (!registry) {
    return html`<section><h2>Consent</h2><p>This deployment has no consent registry configured.</p></section>`;
  }
  return html`<section aria-labelledby="consent-title">
    <h2 id="consent-title">Consent</h2>
    <p>Your consent lives on chain, in the consent registry
      <span class="mono">${registry}</span>, one scope at a time and until a date you pick.
      The <strong>rewards</strong> scope lets you earn a share of what the ads shown to you pay;
      a campaign may ask for a scope of its own. To grant or revoke, you sign one message in
      your wallet; the platform's relayer sends it and pays the gas, so it costs you nothing.</p>
    <div class="table-wrap"><table>
      <thead><tr><th scope="col">Scope</th><th scope="col">On chain</th><th scope="col">As the API mirrors it</th><th scope="col">Change</th></tr></thead>
      <tbody>${scopes.map((s) => html`<tr>
        <th scope="row">${scopeName(s)}<br><span class="mono">${s.id}</span></th>
        <td>${state(s)}</td>
        <td>${mirror(s)}</td>
        <td>${(onChain.get(s.id) ?? 0n) > now()
          ? html`<button type="button" class="secondary" ?disabled=${ctx.busy}
              @click=${() => signChange(ctx, registry, `Revoking ${scopeName(s)}`, () => [s, null])}>Revoke ${scopeName(s)}</button>`
          : nothing}</td>
      </tr>`)}</tbody>
    </table></div>
    ${grantForm(ctx, registry)}
    ${last ? changeView(last) : nothing}
    <dl class="figures"><div><dt>Your ETH now</dt><dd id="eth-balance">${eth(balance)}</dd></div></dl>
  </section>`;
}
