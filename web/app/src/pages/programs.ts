// The programs page: one section per program (referrals, affiliates, the marketplace,
// badges and leaderboards, promotions, resellers), each showing what the signed-in user can
// do there and offering the self-service role it needs. The page needs no role of its own.
// A section that cannot load says so in place; the others still show.

import { html } from 'lit-html';
import { api } from '../lib/api';
import { message, start } from '../lib/page';
import { session, type User } from '../lib/session';
import { affiliatesProgram } from '../programs/affiliates';
import { badgesProgram } from '../programs/badges';
import type { Program } from '../programs/common';
import { marketProgram } from '../programs/market';
import { promotionsProgram } from '../programs/promotions';
import { referralsProgram } from '../programs/referrals';
import { resellersProgram } from '../programs/resellers';

const PROGRAMS: Program[] = [
  referralsProgram,
  affiliatesProgram,
  marketProgram,
  badgesProgram,
  promotionsProgram,
  resellersProgram,
];

let me: User | null = null;
const failures = new Map<string, string>();

start({
  title: 'Programs',
  async load(ctx) {
    const user = await api.get<User>('/v1/me');
    session.update(user);
    ctx.session = session.current();
    me = user;
    await Promise.all(
      PROGRAMS.map(async (program) => {
        try {
          await program.load(ctx, user);
          failures.delete(program.id);
        } catch (error) {
          failures.set(program.id, message(error));
        }
      }),
    );
  },
  view(ctx) {
    const user = me;
    if (!user) return html``;
    return html`
      <nav aria-label="Programs">${PROGRAMS.map((p) => html`<a href=${`#${p.id}`}>${p.title}</a>`)}</nav>
      ${PROGRAMS.map((p) => html`<section id=${p.id} aria-labelledby=${`${p.id}-title`}>
        <h2 id=${`${p.id}-title`}>${p.title}</h2>
        ${failures.has(p.id)
          ? html`<p class="alert">This section could not load: ${failures.get(p.id)}</p>`
          : p.view(ctx, user)}
      </section>`)}`;
  },
});
