// The home page: who you are here, the roles you hold, and where each role's page is.

import { html } from 'lit-html';
import { api } from '../lib/api';
import { roleButton, start, type Ctx } from '../lib/page';
import { session, type Role, type User } from '../lib/session';

const SELF_SERVICE: [Role, string][] = [
  ['advertiser', 'Fund campaigns from your wallet and see what they bought.'],
  ['hoster', 'Run nodes that show ads, and claim what they earned.'],
  ['viewer', 'Grant or revoke consent without paying gas, and earn rewards.'],
  ['seller', 'Sell digital items in the marketplace.'],
  ['buyer', 'Buy digital items from your wallet.'],
];
const PAGE_OF: Partial<Record<Role, string>> = {
  advertiser: '/app/advertiser/',
  hoster: '/app/hoster/',
  viewer: '/app/viewer/',
  seller: '/app/programs/',
  buyer: '/app/programs/',
  affiliate: '/app/programs/',
};

let me: User | null = null;

start({
  title: 'Your wallet',
  intro:
    'adescrow holds advertising budgets in an escrow on chain and pays everyone who earned from them, ' +
    'witnessed impression by impression. Advertisers fund campaigns, hosters claim what their nodes earned, ' +
    'viewers decide what they consent to.',
  async load() {
    me = await api.get<User>('/v1/me');
    session.update(me);
  },
  view(ctx: Ctx) {
    const roles = me?.roles ?? [];
    return html`
      <section aria-labelledby="roles-title">
        <h2 id="roles-title">Your roles</h2>
        <ul class="roles">
          ${SELF_SERVICE.map(([role, what]) => {
            const held = roles.includes(role);
            return html`<li>
              <strong>${role}</strong>: ${what}
              ${held
                ? html`<a href=${PAGE_OF[role]}>Open the ${role} page</a>`
                : roleButton(ctx, role)}
            </li>`;
          })}
        </ul>
        ${roles.includes('affiliate') ? html`<p>You are an affiliate: <a href="/app/programs/">your codes and commissions</a>.</p>` : ''}
      </section>`;
  },
});
