// Chain actions through the wallet: tokens' metadata and balances, the chain's clock, and
// transactions sent and waited for.

import { numberToHex, type Address, type Hash, type Hex } from 'viem';
import { getBlock, getTransactionReceipt, readContract, waitForTransactionReceipt } from 'viem/actions';
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

/**
 * The chain's clock: the latest block's time, or the wall clock if that is later. A devnet's
 * blocks can run seconds ahead of the wall (one block a second at least, however fast they
 * come), and the escrow compares its deadlines with block time.
 */
export async function chainNow(wallet: Wallet): Promise<number> {
  const block = await getBlock(wallet.client, { blockTag: 'latest' });
  return Math.max(Number(block.timestamp), Math.floor(Date.now() / 1000));
}

/** The block a mined transaction is in. */
export async function blockOf(wallet: Wallet, hash: Hash): Promise<bigint> {
  return (await getTransactionReceipt(wallet.client, { hash })).blockNumber;
}

/** `account`'s balance of `token` (the wallet's own by default), in base units. */
export const balanceOf = (wallet: Wallet, token: Address, account: Address = wallet.account): Promise<bigint> =>
  readContract(wallet.client, { address: token, abi: erc20Abi, functionName: 'balanceOf', args: [account] });

/**
 * Sends `data` to `to` from the wallet's account and waits for it to be mined; the wallet
 * fills in fees and nonce, and the gas limit unless `gas` is given. A bare
 * `eth_sendTransaction` rather than viem's `writeContract`, whose transaction preparation
 * brings an elliptic-curve library (a quarter of a page's JavaScript) for work the wallet
 * does anyway.
 */
export async function send(wallet: Wallet, to: Address, data: Hex, gas?: bigint): Promise<Hash> {
  const request = { from: wallet.account, to, data, ...(gas === undefined ? {} : { gas: numberToHex(gas) }) };
  const hash = await wallet.client.request({ method: 'eth_sendTransaction', params: [request] });
  return confirmed(wallet, hash);
}
