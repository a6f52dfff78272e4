// Badges and leaderboards: one's progress toward each badge's next tier, and a board of
// one's choosing with one's own rank on it.

import { html, nothing, type TemplateResult } from 'lit-html';
import { api } from '../lib/api';
import { dateTime, shortAddress } from '../lib/format';
import type { Ctx } from '../lib/page';
import type { User } from '../lib/session';
import { field, onSubmit } from '../lib/form';
import { learnTokens, money, words, type Program } from './common';

interface Progress {
  badge: string;
  measure: string;
  value: number;
  held: string[];
  next: { tier: string; threshold: number; remaining: number } | null;
  revoked: { tier: string; reason: string }[];
}

interface Catalog {
  categories: { category: string; unit: 'base_units' | 'count' }[];
  periods: string[];
  zones: string[];
}

interface Entry {
  rank: number;
  subject: string;
  score: string;
}

interface BoardPage {
  total: number;
  startsOn: string;
  endsAt: string | null;
  entries: Entry[];
}

interface MyRank {
  entry: Entry | null;
  total: number;
}

let progress: Progress[] = [];
let catalog: Catalog | null = null;
/** The board asked for, kept across reloads; counts need no token. */
const chosen = { category: 'qualified_referrals', period: 'all', token: '' };
let board: BoardPage | null = null;
let rank: MyRank | null = null;

const isMoney = (category: string) => catalog?.categories.find((c) => c.category === category)?.unit === 'base_units';

export const badgesProgram: Program = {
  id: 'badges',
  title: 'Badges and leaderboards',
  async load(ctx) {
    [progress, catalog] = await Promise.all([
      api.get<Progress[]>('/v1/me/badges'),
      catalog ? Promise.resolve(catalog) : api.get<Catalog>('/v1/leaderboards', { anonymous: true }),
    ]);
    board = null;
    rank = null;
    // A money board is kept per token: none is shown until one is given.
    if (isMoney(chosen.category) && !chosen.token) return;
    const query = new URLSearchParams({ period: chosen.period });
    if (isMoney(chosen.category)) {
      query.set('token', chosen.token);
      await learnTokens(ctx, [chosen.token]);
    }
    [board, rank] = await Promise.all([
      api.get<BoardPage>(`/v1/leaderboards/${chosen.category}?${query}&perPage=20`, { anonymous: true }),
      api.get<MyRank>(`/v1/leaderboards/${chosen.category}/me?${query}`),
    ]);
  },
  view(ctx, me) {
    return html`
      <h3>Your badges</h3>
      <div class="table-wrap"><table id="badges">
        <thead><tr><th>Badge</th><th>Counts</th><th class="num">You have</th><th>Tiers held</th><th>Next tier</th></tr></thead>
        <tbody>${progress.map((p) => html`<tr>
          <td>${words(p.badge)}</td><td>${p.measure}</td><td class="num">${p.value.toLocaleString('en-US')}</td>
          <td>${p.held.join(', ') || 'none'}${p.revoked.length ? html`<br>revoked: ${p.revoked.map((r) => `${r.tier} (${r.reason})`).join(', ')}` : nothing}</td>
          <td>${p.next ? `${p.next.tier} at ${p.next.threshold.toLocaleString('en-US')}: ${p.next.remaining.toLocaleString('en-US')} to go` : 'all held'}</td>
        </tr>`)}</tbody>
      </table></div>
      <h3>Leaderboards</h3>
      ${catalog ? boardForm(ctx, catalog) : nothing}
      ${boardView(me)}`;
  },
};

function boardForm(ctx: Ctx, c: Catalog): TemplateResult {
  return html`<form @submit=${onSubmit((form) => {
    chosen.category = field(form, 'category');
    chosen.period = field(form, 'period');
    chosen.token = field(form, 'token');
    ctx.act('Reading the board', async () => 'The board is below.');
  })}>
    <label for="board-category">Board</label>
    <select id="board-category" name="category">${c.categories.map((x) => html`<option value=${x.category}
      ?selected=${x.category === chosen.category}>${words(x.category)}</option>`)}</select>
    <label for="board-period">Period</label>
    <select id="board-period" name="period">${c.periods.map((p) => html`<option value=${p}
      ?selected=${p === chosen.period}>${p === 'all' ? 'all time' : p}</option>`)}</select>
    <label>Token <input name="token" class="mono" .value=${chosen.token} placeholder="0x… (for boards of earnings, spend or sales)"></label>
    <div><button type="submit" ?disabled=${ctx.busy}>Show board</button></div>
  </form>`;
}

function boardView(me: User): TemplateResult {
  if (!board) return html`<p>This board is kept per token: give one above.</p>`;
  const score = (e: Entry) => (isMoney(chosen.category) ? money(e.score, chosen.token) : BigInt(e.score).toLocaleString('en-US'));
  const mine = (e: Entry) => e.subject.toLowerCase() === me.address.toLowerCase();
  return html`
    <p id="my-rank">${rank?.entry
      ? `You rank ${rank.entry.rank} of ${rank.total} with ${score(rank.entry)}.`
      : `You are not on this board yet (${board.total} are).`}
      ${chosen.period === 'all' ? '' : `Since ${board.startsOn}${board.endsAt ? `, until ${dateTime(board.endsAt)}` : ''}.`}</p>
    ${board.entries.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th class="num">Rank</th><th>Wallet</th><th class="num">Score</th></tr></thead>
          <tbody>${board.entries.map((e) => html`<tr>
            <td class="num">${e.rank}</td>
            <td class="mono" title=${e.subject}>${shortAddress(e.subject)}${mine(e) ? html` <strong>(you)</strong>` : nothing}</td>
            <td class="num">${score(e)}</td></tr>`)}</tbody>
        </table></div>`
      : html`<p>No one on this board yet.</p>`}`;
}
