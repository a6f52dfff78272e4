// The tokens the hoster's money is in, read once from the chain through the wallet, so that
// the views can show amounts with their symbols and decimals without waiting.

import type { Address } from 'viem';
import { token, type Token } from '../lib/chain';
import { shortAddress, units } from '../lib/format';
import type { Wallet } from '../lib/wallet';

const known = new Map<string, Token>();

/** Reads the symbol and decimals of each token not known yet. */
export async function learn(wallet: Wallet, addresses: Address[]): Promise<void> {
  const found = await Promise.all(addresses.map((a) => token(wallet, a)));
  for (const t of found) known.set(t.address.toLowerCase(), t);
}

export const tokenOf = (address: Address): Token | undefined => known.get(address.toLowerCase());

export const symbolOf = (address: Address): string => tokenOf(address)?.symbol ?? shortAddress(address);

/** Base units of `address`'s token as people read them. */
export function amount(value: bigint | string, address: Address): string {
  const t = tokenOf(address);
  return t ? units(value, t.decimals, t.symbol) : `${value} base units`;
}
