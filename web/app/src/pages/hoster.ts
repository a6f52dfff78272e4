// The hoster page: the hoster's nodes (registered with a proof of possession signed here by
// the node key), its earnings statement, and the claim of what the escrow owes it.

import { html } from 'lit-html';
import { start, type Ctx } from '../lib/page';
import { claimView, loadPayouts, payoutTokens } from '../hoster/claim';
import { earningsView, loadStatement, statementTokens } from '../hoster/earnings';
import { loadNodes, nodesView } from '../hoster/nodes';
import { learn } from '../hoster/tokens';

start({
  title: 'Hoster',
  role: 'hoster',
  async load(ctx: Ctx) {
    await Promise.all([loadNodes(), loadStatement(), loadPayouts(ctx)]);
    await learn(ctx.wallet!, [...new Set([...payoutTokens(), ...statementTokens()])]);
  },
  view: (ctx: Ctx) => html`${claimView(ctx)}${earningsView(ctx)}${nodesView(ctx)}`,
});
