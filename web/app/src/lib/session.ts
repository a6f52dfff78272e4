// The signed-in session: Sign-In with Ethereum (EIP-4361) for an access token and a
// single-use refresh token, kept in localStorage so that every page and tab shares it.

import { signMessage } from 'viem/actions';
import { createSiweMessage } from 'viem/siwe';
import type { Address } from 'viem';
import { ApiError, call } from './api';
import type { Wallet } from './wallet';

export type Role = 'advertiser' | 'hoster' | 'viewer' | 'admin' | 'seller' | 'buyer' | 'affiliate';

export interface User {
  id: string;
  address: Address;
  roles: Role[];
  disabled: boolean;
  createdAt: string;
}

export interface Session {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  user: User;
}

interface Challenge {
  nonce: string;
  expiresAt: string;
  domain: string;
  uri: string;
  chainId: number;
}

const KEY = 'adescrow.session';
let refreshing: Promise<Session | null> | null = null;

function load(): Session | null {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    if (stored && Date.parse(stored.refreshTokenExpiresAt) > Date.now()) return stored;
  } catch {
    // a damaged entry is no session
  }
  return null;
}

function store(next: Session | null): Session | null {
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
  return next;
}

export const session = {
  current: load,

  /**
   * Signs in with the wallet's account: one `personal_sign` of the server's challenge.
   * A referral code counts on an account's first sign-in only; when the server will not
   * count it (a returning account, a used-up code) the user still signs in, without it, and
   * `refused` says why. The code is outside the signed message, and a refused sign-in
   * leaves no trace (its nonce included), so that takes no second signature.
   */
  async signIn(wallet: Wallet, referral?: string): Promise<{ session: Session; refused?: string }> {
    const challenge = await call<Challenge>('GET', '/v1/auth/nonce', undefined, { anonymous: true });
    const message = createSiweMessage({
      address: wallet.account,
      chainId: challenge.chainId,
      domain: challenge.domain,
      nonce: challenge.nonce,
      uri: challenge.uri,
      version: '1',
      statement: 'Sign in to adescrow.',
      issuedAt: new Date(),
      expirationTime: new Date(challenge.expiresAt),
    });
    const signature = await signMessage(wallet.client, { message });
    const post = (body: Record<string, string>) => call<Session>('POST', '/v1/auth/siwe', body, { anonymous: true });
    if (referral) {
      try {
        return { session: store(await post({ message, signature, referral }))! };
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409 && error.field === 'referral')) throw error;
        return { session: store(await post({ message, signature }))!, refused: error.message };
      }
    }
    return { session: store(await post({ message, signature }))! };
  },

  /** A new session for the stored refresh token; null (and signed out) if it is refused. */
  refresh(): Promise<Session | null> {
    refreshing ??= (async () => {
      const stored = load();
      if (!stored) return null;
      try {
        return store(
          await call<Session>('POST', '/v1/auth/refresh', { refreshToken: stored.refreshToken }, { anonymous: true }),
        );
      } catch {
        return store(null);
      }
    })().finally(() => (refreshing = null));
    return refreshing;
  },

  /** Ends the session on the server too (its refresh token stops working). */
  async signOut(): Promise<void> {
    const stored = load();
    store(null);
    if (stored) {
      await call('POST', '/v1/auth/logout', { refreshToken: stored.refreshToken }, { anonymous: true }).catch(() => {});
    }
  },

  /** Keeps the user's roles current after the page took one. */
  update(user: User): void {
    const stored = load();
    if (stored) store({ ...stored, user });
  },
};
