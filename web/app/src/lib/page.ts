// The frame every page shares: branding, navigation, the wallet (connect, chain, sign in,
// sign out), one status line and one alert line, and the page's own view. A page is a
// `Page`: what it loads and how it looks; `start` does the rest and marks the moment the
// page is interactive (`window.__adescrowInteractive`, in ms since navigation), which the
// browser tests measure.

import '../styles.css';
import { html, nothing, render, type TemplateResult } from 'lit-html';
import { api, ApiError } from './api';
import { config, type Config } from './config';
import { session, type Role, type Session, type User } from './session';
import { discover, remembered, Wallet, walletMessage, type Discovered } from './wallet';
import { shortAddress } from './format';

export interface Ctx {
  config: Config;
  wallet: Wallet | null;
  session: Session | null;
  /** True while an action runs: forms disable their buttons. */
  busy: boolean;
  /** Re-renders the page from the current state. */
  render(): void;
  /**
   * Runs a user's action: the status line says what is happening, a failure becomes the
   * alert (in words, naming the field the API refused), and the page reloads its data after.
   * `work` returns what the status line says once done.
   */
  act(doing: string, work: () => Promise<string | void>): Promise<boolean>;
}

export interface Page {
  title: string;
  /** What the page is for, shown before the user has signed in. */
  intro?: string;
  /** The role this page is for; a signed-in user without it is offered to take it. */
  role?: Role;
  /** Loads the page's data (signed in, with the role). */
  load(ctx: Ctx): Promise<void>;
  view(ctx: Ctx): TemplateResult;
}

const PAGES: [string, string][] = [
  ['/app/', 'Home'],
  ['/app/advertiser/', 'Advertiser'],
  ['/app/hoster/', 'Hoster'],
  ['/app/viewer/', 'Viewer'],
  ['/app/programs/', 'Programs'],
];

interface Branding {
  name: string;
  logoUrl?: string;
  primaryColour?: string;
  accentColour?: string;
  supportContact?: string;
}

const withArticle = (role: Role): string => `${role === 'advertiser' || role === 'affiliate' ? 'an' : 'a'} ${role}`;

/** "Become a <role>": takes a self-service role and keeps the session's user current. */
export function roleButton(ctx: Ctx, role: Role, className = ''): TemplateResult {
  return html`<button type="button" class=${className} ?disabled=${ctx.busy}
    @click=${() => ctx.act(`Taking the ${role} role`, async () => {
      session.update(await api.post<User>('/v1/me/roles', { role }));
      ctx.session = session.current();
      return `You are now ${withArticle(role)}.`;
    })}>Become ${withArticle(role)}</button>`;
}

/** A transaction's hash, linked to the block explorer when the server names one. */
export function txLink(ctx: Ctx, hash: string, id?: string): TemplateResult {
  return ctx.config.explorerTx
    ? html`<a class="mono" id=${id ?? nothing} href=${ctx.config.explorerTx + hash} rel="noopener">${hash}</a>`
    : html`<span class="mono" id=${id ?? nothing}>${hash}</span>`;
}

/** An error of any kind, as the sentence the alert line shows. */
export function message(error: unknown): string {
  if (error instanceof ApiError) return error.field ? `${error.message} (${error.field})` : error.message;
  return walletMessage(error);
}

export async function start(page: Page): Promise<void> {
  const root = document.getElementById('app')!;
  // The static "Loading…" the HTML shows until this script runs.
  root.replaceChildren();
  let status = '';
  let alert = '';
  let wallets: Discovered[] = [];
  let branding: Branding | null = null;
  let loaded = false;

  const ctx: Ctx = {
    config: await config(),
    wallet: null,
    session: session.current(),
    busy: false,
    render: () => render(frame(), root),
    act: async (doing, work) => {
      ctx.busy = true;
      status = `${doing}…`;
      alert = '';
      ctx.render();
      let ok = true;
      try {
        status = (await work()) ?? 'Done.';
      } catch (error) {
        ok = false;
        status = '';
        alert = message(error);
      }
      try {
        await refresh();
      } catch (error) {
        alert ||= message(error);
      }
      ctx.busy = false;
      ctx.render();
      return ok;
    },
  };

  const user = (): User | null => ctx.session?.user ?? null;
  const onRightChain = () => !!ctx.wallet && ctx.wallet.chainId === ctx.config.chainId;
  const hasRole = () => !page.role || !!user()?.roles.includes(page.role);
  const ready = () => !!ctx.session && onRightChain() && hasRole();

  /** Loads the page's data when it can be shown. */
  async function refresh(): Promise<void> {
    if (!ready()) return;
    try {
      await page.load(ctx);
      loaded = true;
    } finally {
      // A refresh token the server refused signed the session out underneath.
      ctx.session = session.current();
      if (!ctx.session) loaded = false;
    }
  }

  async function connect(found: Discovered, prompt: boolean): Promise<void> {
    ctx.wallet = await Wallet.connect(found, prompt);
    if (!ctx.wallet) return;
    // Another account than the session's: that session is not this user's.
    if (ctx.session && ctx.session.user.address.toLowerCase() !== ctx.wallet.account.toLowerCase()) {
      await session.signOut();
      ctx.session = null;
    }
    ctx.wallet.onChange(() => location.reload());
  }

  const connectButton = (found: Discovered) =>
    html`<button type="button" ?disabled=${ctx.busy}
      @click=${() => ctx.act(`Connecting ${found.info.name}`, async () => {
        await connect(found, true);
        return ctx.wallet ? 'Wallet connected.' : 'The wallet gave no account.';
      })}>Connect ${found.info.name}</button>`;

  function walletBox(): TemplateResult {
    if (!ctx.wallet) {
      if (!wallets.length) {
        return html`<p>No wallet found in this browser. Install one (any EIP-6963 wallet), then reload.</p>`;
      }
      return html`<div class="row">${wallets.map(connectButton)}</div>`;
    }
    const w = ctx.wallet;
    if (!onRightChain()) {
      return html`<p>Your wallet is on chain ${w.chainId}; adescrow runs on chain ${ctx.config.chainId}.</p>
        <button type="button" ?disabled=${ctx.busy}
          @click=${() => ctx.act('Switching chain', async () => {
            await w.switchChain(ctx.config.chainId);
            return `Switched to chain ${ctx.config.chainId}.`;
          })}>Switch to chain ${ctx.config.chainId}</button>`;
    }
    if (!ctx.session) {
      return html`<p><span class="mono" title=${w.account}>${shortAddress(w.account)}</span> connected.</p>
        <button type="button" ?disabled=${ctx.busy}
          @click=${() => ctx.act('Signing in: sign the message in your wallet', async () => {
            // A referral or affiliate link (`?ref=`) counts on the first sign-in only.
            const url = new URL(location.href);
            const referral = url.searchParams.get('ref') ?? undefined;
            const signedIn = await session.signIn(w, referral);
            ctx.session = signedIn.session;
            if (referral) {
              url.searchParams.delete('ref');
              history.replaceState(null, '', url);
            }
            return signedIn.refused ? `Signed in. The referral code did not count: ${signedIn.refused}.` : 'Signed in.';
          })}>Sign in</button>`;
    }
    return html`<p>Signed in as <span class="mono" id="signed-in-as" title=${w.account}>${shortAddress(w.account)}</span></p>
      <button type="button" ?disabled=${ctx.busy}
        @click=${() => ctx.act('Signing out', async () => {
          await session.signOut();
          ctx.session = null;
          loaded = false;
          return 'Signed out.';
        })}>Sign out</button>`;
  }

  function roleOffer(): TemplateResult | typeof nothing {
    if (!ctx.session || !onRightChain() || hasRole() || !page.role) return nothing;
    return html`<section><p>This page is for ${page.role}s. Your account does not hold that role yet.</p>
      ${roleButton(ctx, page.role)}</section>`;
  }

  function frame(): TemplateResult {
    const here = location.pathname.replace(/\/?$/, '/');
    return html`
      <header>
        <a class="brand" href="/app/">${branding?.logoUrl ? html`<img src=${branding.logoUrl} alt="" height="28">` : nothing}${branding?.name ?? 'adescrow'}</a>
        <nav aria-label="Pages">${PAGES.map(
          ([href, name]) => html`<a href=${href} aria-current=${here === href ? 'page' : nothing}>${name}</a>`,
        )}</nav>
        <div class="wallet">${walletBox()}</div>
      </header>
      <main>
        <h1>${page.title}</h1>
        <p role="status" aria-live="polite" class="status">${status}</p>
        <p role="alert" class="alert">${alert}</p>
        ${ctx.session ? nothing : html`<p>${page.intro ?? ''} Connect your wallet and sign in to continue: signing in is one
              message signed in your wallet, and costs no gas.</p>`}
        ${roleOffer()}
        ${ready() && loaded ? page.view(ctx) : nothing}
      </main>
      ${branding?.supportContact ? html`<footer>Support: ${branding.supportContact}</footer>` : nothing}`;
  }

  // Reseller branding by host name, and the wallets, at once.
  const [brand, found] = await Promise.all([
    api.get<Branding>('/v1/branding', { anonymous: true }).catch(() => null),
    discover(),
  ]);
  branding = brand;
  wallets = found;
  if (branding) {
    document.title = `${page.title} · ${branding.name}`;
    const style = document.documentElement.style;
    if (branding.primaryColour) style.setProperty('--primary', branding.primaryColour);
    if (branding.accentColour) style.setProperty('--accent', branding.accentColour);
  }
  try {
    const previous = remembered(wallets);
    if (previous) await connect(previous, false);
    await refresh();
  } catch (error) {
    alert = message(error);
  }
  ctx.render();
  (window as { __adescrowInteractive?: number }).__adescrowInteractive = performance.now();
}
