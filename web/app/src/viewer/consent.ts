// Consent in the ConsentRegistry, granted and revoked without gas: the user signs one
// EIP-712 message (docs/ENCODING.md), the API queues it, and the relayer sends it and pays
// for it. Scopes are bytes32: `keccak256(bytes(purpose))` for a purpose anyone may ask
// for, such as "rewards", which the ad server checks before it pays a viewer a reward.

import { keccak256, stringToBytes, type Address, type Hash, type Hex } from 'viem';
import { getBalance, readContract, signTypedData } from 'viem/actions';
import { api, poll } from '../lib/api';
import { consentAbi, consentTypes } from '../lib/contracts';
import type { Wallet } from '../lib/wallet';

export interface Scope {
  id: Hex;
  /** The purpose it is the hash of, when the page knows it. */
  purpose: string | null;
}

/** The scope a viewer holds to earn rewards on campaigns that ask no consent of their own. */
export const REWARDS: Scope = { id: keccak256(stringToBytes('rewards')), purpose: 'rewards' };

/** What the API's chain mirror says of one scope (GET /v1/consent/{user}). */
export interface MirroredConsent {
  scope: Hex;
  /** Unix seconds; absent when revoked. */
  expiry: number | null;
  active: boolean;
  block: number;
  final: boolean;
}

/** A consent request's progress at the relayer (GET /v1/consent/requests/{digest}). */
export interface ConsentRequest {
  digest: Hash;
  status: 'queued' | 'sent' | 'mined' | 'confirmed' | 'failed';
  txHash: Hash | null;
  error: string | null;
}

// Purposes the user typed, by scope, so that a scope granted once keeps its name here.
const NAMES = 'adescrow.scopes';

function names(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(NAMES) ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/** The scope with this id, named if its purpose is known. */
export function scopeOf(id: Hex): Scope {
  const key = id.toLowerCase() as Hex;
  if (key === REWARDS.id) return REWARDS;
  return { id: key, purpose: names()[key] ?? null };
}

/**
 * What the user typed as a scope: a purpose (hashed, and remembered by name) or a bytes32
 * scope as 0x and 64 hex digits, as a campaign's targeting names it.
 */
export function parseScope(text: string): Scope {
  const t = text.trim();
  if (/^0x[0-9a-fA-F]{64}$/.test(t)) return scopeOf(t as Hex);
  if (!t) throw new Error('Purpose or scope: enter a purpose (such as "rewards") or a bytes32 scope.');
  const scope = { id: keccak256(stringToBytes(t)), purpose: t };
  localStorage.setItem(NAMES, JSON.stringify({ ...names(), [scope.id]: t }));
  return scope;
}

export const scopeName = (scope: Scope): string => scope.purpose ?? `${scope.id.slice(0, 10)}…${scope.id.slice(-4)}`;

/** The registry's expiry of the user's consent to `scope` (unix seconds; 0 if none). */
export const expiryOnChain = (wallet: Wallet, registry: Address, scope: Scope): Promise<bigint> =>
  readContract(wallet.client, {
    address: registry,
    abi: consentAbi,
    functionName: 'consentExpiry',
    args: [wallet.account, scope.id],
  });

/** One grant or revocation, from the signature to the relayer's confirmed transaction. */
export interface Change {
  action: 'grant' | 'revoke';
  scope: Scope;
  /** The user's ETH before they signed, and once the change is confirmed. */
  before: bigint;
  after: bigint | null;
  request: ConsentRequest | null;
}

const POLL_MS = 400;
const WAIT_MS = 120_000;
/** How long the signature stays good for the relayer. */
const DEADLINE_SECONDS = 3600;

/**
 * Signs a grant (until `expiry`, unix seconds) or, with `expiry` null, a revocation, hands
 * it to the relayer, and waits until its transaction is confirmed. `progress` sees each step.
 */
export async function change(
  wallet: Wallet,
  chainId: number,
  registry: Address,
  scope: Scope,
  expiry: bigint | null,
  progress: (change: Change) => void,
): Promise<Change> {
  const user = wallet.account;
  const [before, nonce] = await Promise.all([
    getBalance(wallet.client, { address: user }),
    readContract(wallet.client, { address: registry, abi: consentAbi, functionName: 'nonces', args: [user] }),
  ]);
  const current: Change = { action: expiry === null ? 'revoke' : 'grant', scope, before, after: null, request: null };
  const deadline = BigInt(Math.floor(Date.now() / 1000) + DEADLINE_SECONDS);
  const domain = { name: 'adescrow consent', version: '1', chainId, verifyingContract: registry } as const;
  const signature =
    expiry === null
      ? await signTypedData(wallet.client, {
          domain,
          types: consentTypes,
          primaryType: 'ConsentRevocation',
          message: { user, scope: scope.id, nonce, deadline },
        })
      : await signTypedData(wallet.client, {
          domain,
          types: consentTypes,
          primaryType: 'ConsentGrant',
          message: { user, scope: scope.id, expiry, nonce, deadline },
        });
  const body: Record<string, unknown> = {
    action: current.action,
    user,
    scope: scope.id,
    nonce: nonce.toString(),
    deadline: deadline.toString(),
    signature,
  };
  if (expiry !== null) body.expiry = Number(expiry);
  current.request = await api.post<ConsentRequest>('/v1/consent', body, { anonymous: true });
  progress(current);

  const path = `/v1/consent/requests/${current.request.digest}`;
  const settled = (r: ConsentRequest) => r.status === 'confirmed' || r.status === 'failed';
  if (!settled(current.request)) {
    const read = async () => {
      current.request = await api.get<ConsentRequest>(path, { anonymous: true });
      progress(current);
      return current.request;
    };
    await poll(read, settled, WAIT_MS, POLL_MS);
  }
  if (current.request.status === 'failed') {
    throw new Error(`The relayer could not record it: ${current.request.error ?? 'no reason given'}.`);
  }
  if (current.request.status !== 'confirmed') {
    throw new Error(`The relayer has not confirmed it yet (${current.request.status}); it stays queued: reload later.`);
  }
  current.after = await getBalance(wallet.client, { address: user });
  progress(current);
  return current;
}
