// What the server tells the pages about its deployment (`/app/config.json`).

import type { Address } from 'viem';

export interface Config {
  chainId: number;
  escrow: Address | null;
  consent: Address | null;
  /** Seconds after a campaign's end before its advertiser may withdraw. */
  gracePeriod: number | null;
  /** A block explorer's transaction URL prefix, when the chain has one. */
  explorerTx: string | null;
}

let loaded: Promise<Config> | null = null;

export function config(): Promise<Config> {
  loaded ??= fetch('/app/config.json').then((res) => {
    if (!res.ok) throw new Error(`the server's page configuration is missing (${res.status})`);
    return res.json() as Promise<Config>;
  });
  return loaded;
}
