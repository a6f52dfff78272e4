// Chain actions through the wallet: tokens' metadata, and transactions sent and waited for.

import type { Address, Hash } from 'viem';
import { readContract, waitForTransactionReceipt } from 'viem/actions';
import { erc20Abi } from './contracts';
import type { Wallet } from './wallet';

export interface Token {
  address: Address;
  symbol: string;
  decimals: number;
}

const tokens = new Map<string, Promise<Token>>();

/** A token's symbol and decimals, read once per page. */
export function token(wallet: Wallet, address: Address): Promise<Token> {
  const key = address.toLowerCase();
  let found = tokens.get(key);
  if (!found) {
    found = Promise.all([
      readContract(wallet.client, { address, abi: erc20Abi, functionName: 'symbol' }),
      readContract(wallet.client, { address, abi: erc20Abi, functionName: 'decimals' }),
    ]).then(([symbol, decimals]) => ({ address, symbol, decimals }));
    tokens.set(key, found);
  }
  return found;
}

/** Waits for a sent transaction; throws if it reverted. */
export async function confirmed(wallet: Wallet, hash: Hash): Promise<Hash> {
  const receipt = await waitForTransactionReceipt(wallet.client, { hash, pollingInterval: 250 });
  if (receipt.status !== 'success') throw new Error(`The transaction ${hash} reverted on chain.`);
  return hash;
}
