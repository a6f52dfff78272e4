// Amounts, addresses and times as people read them. Amounts stay integers in base units
// (bigint) until they are shown.

import { formatUnits, parseUnits } from 'viem';

export const shortAddress = (address: string): string => `${address.slice(0, 6)}…${address.slice(-4)}`;

/** `amount` base units of a token with `decimals`, grouped, signed, with its symbol. */
export function units(amount: bigint | string, decimals: number, symbol = ''): string {
  const value = BigInt(amount);
  // formatUnits of an amount between -1 and 0 would lose its sign in BigInt("-0").
  if (value < 0n) return `−${units(-value, decimals, symbol)}`;
  const [whole, fraction = ''] = formatUnits(value, decimals).split('.');
  const grouped = BigInt(whole).toLocaleString('en-US');
  const shown = fraction ? `${grouped}.${fraction}` : grouped;
  return symbol ? `${shown} ${symbol}` : shown;
}

/** What a person typed, in base units; null if it is not an amount of this token. */
export function parseAmount(text: string, decimals: number): bigint | null {
  const t = text.trim();
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  const fraction = t.split('.')[1] ?? '';
  if (fraction.length > decimals) return null;
  return parseUnits(t, decimals);
}

/** Seconds as `2d 03:04:05` for countdowns. */
export function countdown(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return d ? `${d}d ${hms}` : hms;
}

export const dateTime = (iso: string): string => new Date(iso).toLocaleString();
