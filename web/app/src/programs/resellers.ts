// Resellers: an advertiser joins a reseller by its code (once) and sees which one it
// belongs to. A reseller's own branding is the frame's, by host name.

import { html } from 'lit-html';
import { api } from '../lib/api';
import { dateTime } from '../lib/format';
import { field, onSubmit } from '../lib/form';
import { found, roleOffer, type Program } from './common';

interface Membership {
  reseller: string;
  via: string;
  joinedAt: string;
}

let membership: Membership | null = null;

export const resellersProgram: Program = {
  id: 'resellers',
  title: 'Resellers',
  async load(_ctx, me) {
    membership = me.roles.includes('advertiser') ? await found<Membership>('/v1/resellers/join') : null;
  },
  view(ctx, me) {
    if (!me.roles.includes('advertiser')) return roleOffer(ctx, 'advertiser', 'Joining an agency that resells adescrow.');
    if (membership) {
      return html`<p id="membership">You belong to <strong>${membership.reseller}</strong>, joined by ${membership.via}
        on ${dateTime(membership.joinedAt)}.</p>`;
    }
    return html`<p>An agency that resells adescrow gives you its code: join it once, and it looks after your account.</p>
      <form @submit=${onSubmit((form) => {
        const code = field(form, 'code');
        ctx.act('Joining the reseller', async () => {
          const joined = await api.post<Membership>('/v1/resellers/join', { code });
          return `You joined ${joined.reseller}.`;
        });
      })}>
        <label>Reseller code <input name="code" class="mono" required placeholder="RES…"></label>
        <div><button type="submit" ?disabled=${ctx.busy}>Join reseller</button></div>
      </form>`;
  },
};
