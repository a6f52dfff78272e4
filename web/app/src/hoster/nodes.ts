// The hoster's nodes: the list, registration with a proof of possession signed in this
// page by the node key (a fresh key generated here, or one the hoster pastes), renaming,
// the witness flag, and retiring. A node key never leaves the page: the API gets its
// address and its signature of the registration message only.

import { html, nothing, type TemplateResult } from 'lit-html';
import { getAddress, isHex, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { api, idempotencyKey } from '../lib/api';
import { field, onSubmit } from '../lib/form';
import type { Ctx } from '../lib/page';
import { dateTime } from '../lib/format';

export interface Node {
  id: string;
  ownerId: string;
  address: Address;
  name: string;
  canWitness: boolean;
  createdAt: string;
  retiredAt: string | null;
}

let nodes: Node[] = [];
/** A key this page generated and registered, shown until the hoster says it is copied. */
let revealed: { name: string; address: Address; key: Hex } | null = null;
/** The node the hoster asked to retire, waiting for the confirmation. */
let retiring: Node | null = null;

export async function loadNodes(): Promise<void> {
  nodes = await api.get<Node[]>('/v1/nodes');
}

/**
 * What the node key signs (`personal_sign`) to prove the hoster holds it: the API's
 * `registration_message`, with both addresses EIP-55 checksummed.
 */
export const registrationMessage = (owner: Address, node: Address, chainId: number): string =>
  `adescrow node registration\nowner: ${getAddress(owner)}\nnode: ${getAddress(node)}\nchain id: ${chainId}`;

/** The pasted key as 0x-prefixed hex; an error naming the field otherwise. */
function pastedKey(text: string): Hex {
  const t = text.trim();
  const key = (t.startsWith('0x') ? t : `0x${t}`) as Hex;
  if (!isHex(key) || key.length !== 66) {
    throw new Error('Existing node private key: not a private key (64 hexadecimal digits, with or without 0x).');
  }
  return key;
}

async function register(ctx: Ctx, form: HTMLFormElement): Promise<string> {
  const name = field(form, 'name');
  const pasted = field(form, 'key');
  const canWitness = field(form, 'canWitness') === 'yes';
  const key = pasted ? pastedKey(pasted) : generatePrivateKey();
  let node;
  try {
    node = privateKeyToAccount(key);
  } catch {
    throw new Error('Existing node private key: not a valid secp256k1 private key.');
  }
  const owner = ctx.session!.user.address;
  const signature = await node.signMessage({ message: registrationMessage(owner, node.address, ctx.config.chainId) });
  const registered = await api.post<Node>(
    '/v1/nodes',
    { address: node.address, name, canWitness, signature },
    { idempotencyKey: idempotencyKey() },
  );
  form.reset();
  if (pasted) return `Registered ${registered.name} (${registered.address}).`;
  revealed = { name: registered.name, address: registered.address, key };
  return `Registered ${registered.name}. Copy its private key now: it is shown once.`;
}

async function update(form: HTMLFormElement): Promise<string> {
  const id = field(form, 'node');
  const name = field(form, 'name');
  const witness = field(form, 'canWitness');
  const body: { name?: string; canWitness?: boolean } = {};
  if (name) body.name = name;
  if (witness) body.canWitness = witness === 'yes';
  if (!id) throw new Error('Node: choose a node.');
  if (!name && !witness) throw new Error('New name: type a new name or choose whether the node may witness.');
  const node = await api.patch<Node>(`/v1/nodes/${id}`, body);
  form.reset();
  return `Saved ${node.name}.`;
}

function revealedKey(ctx: Ctx): TemplateResult | typeof nothing {
  if (!revealed) return nothing;
  const shown = revealed;
  return html`<div class="card" role="region" aria-labelledby="new-key-title">
    <h3 id="new-key-title">The private key of ${shown.name}</h3>
    <p>Copy it into your node's configuration now, as <span class="mono">ADESCROW_NODE_KEY</span>
      (or <span class="mono">--node-key</span>). It is shown this once: the page keeps no copy and the
      server never had it. Whoever holds it can sign receipts as this node.</p>
    <p>Node address: <span class="mono">${shown.address}</span></p>
    <p class="mono" id="new-node-key">${shown.key}</p>
    <div class="row">
      <button type="button" class="secondary"
        @click=${() => ctx.act('Copying the key', async () => {
          // The clipboard API exists in secure contexts only (https, or localhost).
          if (!navigator.clipboard) throw new Error('This browser does not let the page copy here: select the key and copy it.');
          await navigator.clipboard.writeText(shown.key);
          return 'The key is on your clipboard.';
        })}>Copy the key</button>
      <button type="button" @click=${() => {
        revealed = null;
        ctx.render();
      }}>I have copied it</button>
    </div>
  </div>`;
}

function retireConfirmation(ctx: Ctx): TemplateResult | typeof nothing {
  if (!retiring) return nothing;
  const node = retiring;
  return html`<div class="card" role="region" aria-labelledby="retire-title">
    <h3 id="retire-title">Retire ${node.name} for good?</h3>
    <p>Its signatures stop counting at once, and its address can never be registered again.</p>
    <div class="row">
      <button type="button" ?disabled=${ctx.busy}
        @click=${() => ctx.act(`Retiring ${node.name}`, async () => {
          await api.delete<Node>(`/v1/nodes/${node.id}`);
          retiring = null;
          return `Retired ${node.name}.`;
        })}>Yes, retire it</button>
      <button type="button" class="secondary" @click=${() => {
        retiring = null;
        ctx.render();
      }}>Keep it</button>
    </div>
  </div>`;
}

function table(): TemplateResult {
  if (!nodes.length) return html`<p>No nodes yet: register one below.</p>`;
  return html`<div class="table-wrap"><table id="nodes">
    <thead><tr><th scope="col">Name</th><th scope="col">Address</th><th scope="col">Witness</th>
      <th scope="col">Registered</th><th scope="col">Status</th></tr></thead>
    <tbody>${nodes.map((n) => html`<tr>
      <th scope="row">${n.name}</th>
      <td class="mono">${n.address}</td>
      <td>${n.canWitness ? 'yes' : 'no'}</td>
      <td>${dateTime(n.createdAt)}</td>
      <td>${n.retiredAt ? `retired ${dateTime(n.retiredAt)}` : 'active'}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

export function nodesView(ctx: Ctx): TemplateResult {
  const active = nodes.filter((n) => !n.retiredAt);
  const chosen = (form: HTMLFormElement | null) => (form ? active.find((n) => n.id === field(form, 'node')) : undefined);
  return html`<section aria-labelledby="nodes-title">
    <h2 id="nodes-title">Your nodes</h2>
    ${table()}
    ${revealedKey(ctx)}
    <h3>Register a node</h3>
    <form @submit=${onSubmit((form) => void ctx.act('Registering the node', () => register(ctx, form)))}>
      <label>Node name <input name="name" autocomplete="off" required></label>
      <label>Existing node private key <input name="key" type="password" autocomplete="off" aria-describedby="key-hint"></label>
      <p id="key-hint">Leave it empty and the page generates a new key, which it shows you once.
        A pasted key never leaves this page: it only signs the proof that you hold it.</p>
      <label for="register-witness">May witness</label>
      <select id="register-witness" name="canWitness">
        <option value="no">No</option>
        <option value="yes">Yes: it may co-sign other hosters' receipts</option>
      </select>
      <div class="row"><button type="submit" ?disabled=${ctx.busy}>Register node</button></div>
    </form>
    ${active.length
      ? html`<h3>Change a node</h3>
        <form @submit=${onSubmit((form) => void ctx.act('Saving the node', () => update(form)))}>
          <label for="change-node">Node</label>
          <select id="change-node" name="node">${active.map((n) => html`<option value=${n.id}>${n.name}</option>`)}</select>
          <label>New name <input name="name" autocomplete="off"></label>
          <label for="change-witness">Witnessing</label>
          <select id="change-witness" name="canWitness">
            <option value="">Unchanged</option>
            <option value="no">May not witness</option>
            <option value="yes">May witness</option>
          </select>
          <div class="row">
            <button type="submit" ?disabled=${ctx.busy}>Save changes</button>
            <button type="button" class="secondary" ?disabled=${ctx.busy}
              @click=${(e: Event) => {
                retiring = chosen((e.currentTarget as HTMLElement).closest('form')) ?? null;
                ctx.render();
              }}>Retire node</button>
          </div>
        </form>
        ${retireConfirmation(ctx)}`
      : nothing}
  </section>`;
}
