// The escrow's transactions, all through the user's wallet. An escrow account is an
// advertiser's campaign or a buyer's order: opened with one EIP-2612 permit signature and
// one transaction (approve + open for tokens without permit), topped up, closed early, and
// what is left withdrawn; and a payee's claim of what settlements owe it.

import { ContractFunctionExecutionError, encodeFunctionData, slice, zeroAddress, type Address, type Hash, type Hex } from 'viem';
import { readContract, signTypedData } from 'viem/actions';
import { chainNow, send } from './chain';
import { erc20Abi, escrowAbi, permitTypes } from './contracts';
import type { Wallet } from './wallet';

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

/** How the escrow account was opened: which path, and the opening transaction. */
export interface Opened {
  permit: boolean;
  hash: Hash;
}

/** Opens escrow account `id` with `amount` of `token` until `end` (unix seconds). */
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

/**
 * Claims what settlements owe `account` in `token`: the payee's `index` and `cumulative`
 * amount from the API's payouts, with its Merkle `proof`. The escrow pays the cumulative
 * amount less what it paid before, to `account`.
 */
export function claim(wallet: Wallet, escrow: Address, account: Address, token: Address, index: bigint, cumulative: bigint, proof: Hex[]): Promise<Hash> {
  // The leaf's `indexAndAmount`: the index in the high 128 bits, the cumulative in the low.
  const args = [account, token, (index << 128n) | cumulative, proof] as const;
  return send(wallet, escrow, encodeFunctionData({ abi: escrowAbi, functionName: 'claim', args }));
}
