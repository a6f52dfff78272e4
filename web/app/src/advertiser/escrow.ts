// The advertiser's escrow transactions, all through the user's wallet: open a campaign's
// escrow with one EIP-2612 permit signature and one transaction (approve + open for tokens
// without permit), top it up, close it early and withdraw what is left.

import { ContractFunctionExecutionError, encodeFunctionData, numberToHex, slice, zeroAddress, type Address, type Hash, type Hex } from 'viem';
import { getBlock, getTransactionReceipt, readContract, signTypedData } from 'viem/actions';
import { confirmed } from '../lib/chain';
import { erc20Abi, escrowAbi, permitTypes } from '../lib/contracts';
import type { Wallet } from '../lib/wallet';

/** `AdEscrow.campaign`: what the chain holds for an escrow campaign id. */
export interface OnChain {
  token: Address;
  /** Unix seconds. */
  end: number;
  remaining: bigint;
  advertiser: Address;
}

export const isOpen = (escrow: OnChain): boolean => escrow.token !== zeroAddress;

export function onChain(wallet: Wallet, escrow: Address, id: Hex): Promise<OnChain> {
  return readContract(wallet.client, { address: escrow, abi: escrowAbi, functionName: 'campaign', args: [id] });
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

export const balanceOf = (wallet: Wallet, token: Address): Promise<bigint> =>
  readContract(wallet.client, { address: token, abi: erc20Abi, functionName: 'balanceOf', args: [wallet.account] });

/**
 * Sends `data` to `to` from the wallet's account and waits for it to be mined; the wallet
 * fills in fees and nonce, and the gas limit unless `gas` is given. A bare
 * `eth_sendTransaction` rather than viem's `writeContract`, whose transaction preparation
 * brings an elliptic-curve library (a quarter of this page's JavaScript) for work the wallet
 * does anyway.
 */
async function send(wallet: Wallet, to: Address, data: Hex, gas?: bigint): Promise<Hash> {
  const request = { from: wallet.account, to, data, ...(gas === undefined ? {} : { gas: numberToHex(gas) }) };
  const hash = await wallet.client.request({ method: 'eth_sendTransaction', params: [request] });
  return confirmed(wallet, hash);
}

/**
 * Gas for a withdrawal, given rather than estimated: a wallet estimates against the latest
 * block, whose time may still be inside the grace period that has just ended (on a devnet
 * no block comes until a transaction does), and would size the transaction for the revert.
 * A withdrawal writes two slots and makes one token transfer; this leaves room for tokens
 * whose transfers cost more.
 */
const WITHDRAW_GAS = 200_000n;

/** The token's EIP-712 domain and the owner's permit nonce; null if it has no EIP-2612 permit. */
async function permitTerms(wallet: Wallet, token: Address) {
  try {
    const [[, name, version, chainId, verifyingContract], nonce] = await Promise.all([
      readContract(wallet.client, { address: token, abi: erc20Abi, functionName: 'eip712Domain' }),
      readContract(wallet.client, { address: token, abi: erc20Abi, functionName: 'nonces', args: [wallet.account] }),
    ]);
    return { domain: { name, version, chainId, verifyingContract }, nonce };
  } catch (error) {
    // A revert (or no such function) means no permit; a failing connection is an error.
    if (error instanceof ContractFunctionExecutionError) return null;
    throw error;
  }
}

/** Approves the escrow for `amount` unless the allowance already covers it. */
async function ensureAllowance(wallet: Wallet, escrow: Address, token: Address, amount: bigint): Promise<void> {
  const allowance = await readContract(wallet.client, {
    address: token, abi: erc20Abi, functionName: 'allowance', args: [wallet.account, escrow],
  });
  if (allowance >= amount) return;
  await send(wallet, token, encodeFunctionData({ abi: erc20Abi, functionName: 'approve', args: [escrow, amount] }));
}

/** How the escrow was opened: which path, and the opening transaction. */
export interface Opened {
  permit: boolean;
  hash: Hash;
}

/** Opens escrow campaign `id` with `amount` of `token` until `end` (unix seconds). */
export async function open(wallet: Wallet, escrow: Address, id: Hex, token: Address, amount: bigint, end: number): Promise<Opened> {
  const terms = await permitTerms(wallet, token);
  if (!terms) {
    await ensureAllowance(wallet, escrow, token, amount);
    const data = encodeFunctionData({ abi: escrowAbi, functionName: 'openCampaign', args: [id, token, amount, end] });
    return { permit: false, hash: await send(wallet, escrow, data) };
  }
  // An hour to send the transaction after signing.
  const deadline = BigInt((await chainNow(wallet)) + 3600);
  const signature = await signTypedData(wallet.client, {
    domain: terms.domain,
    types: permitTypes,
    primaryType: 'Permit',
    message: { owner: wallet.account, spender: escrow, value: amount, nonce: terms.nonce, deadline },
  });
  // r, s and v as the 65 bytes lay them out; v as 27 or 28 (some wallets give 0 or 1). By
  // hand: viem's parseSignature brings the elliptic-curve library too.
  const r = slice(signature, 0, 32);
  const s = slice(signature, 32, 64);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  const data = encodeFunctionData({
    abi: escrowAbi,
    functionName: 'openCampaignWithPermit',
    args: [id, token, amount, end, deadline, v < 27 ? v + 27 : v, r, s],
  });
  return { permit: true, hash: await send(wallet, escrow, data) };
}

/** Adds `amount` to an open escrow campaign (approving first if the allowance is short). */
export async function topUp(wallet: Wallet, escrow: Address, id: Hex, token: Address, amount: bigint): Promise<Hash> {
  await ensureAllowance(wallet, escrow, token, amount);
  return send(wallet, escrow, encodeFunctionData({ abi: escrowAbi, functionName: 'fund', args: [id, amount] }));
}

/** Ends the escrow campaign now; the grace period for its last settlements starts. */
export function close(wallet: Wallet, escrow: Address, id: Hex): Promise<Hash> {
  return send(wallet, escrow, encodeFunctionData({ abi: escrowAbi, functionName: 'closeCampaign', args: [id] }));
}

/** Takes back what is left, once the end and the grace period are over. */
export function withdraw(wallet: Wallet, escrow: Address, id: Hex): Promise<Hash> {
  return send(wallet, escrow, encodeFunctionData({ abi: escrowAbi, functionName: 'withdraw', args: [id] }), WITHDRAW_GAS);
}
