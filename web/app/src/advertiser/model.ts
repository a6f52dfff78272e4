// What the advertiser page reads from the API, as the API shapes it (src/http/brands.rs,
// src/http/campaigns.rs, src/adserver/analytics.rs, src/mirror/reads.rs). Amounts are
// decimal strings of token base units.

import type { Address, Hex } from 'viem';
import { api, ApiError, poll } from '../lib/api';

export interface Brand {
  id: string;
  name: string;
  dailyBudget: string;
  monthlyBudget: string;
  timeZone: string;
  active: boolean;
  createdAt: string;
}

export type Status = 'DRAFT' | 'SCHEDULED' | 'RUNNING' | 'PAUSED' | 'BUDGET_REACHED' | 'COMPLETED';

export interface Campaign {
  id: string;
  brandId: string;
  name: string;
  token: Address;
  chainCampaignId: Hex;
  startsAt: string;
  endsAt: string;
  priority: number;
  status: Status;
  createdAt: string;
}

export interface TokenPrices {
  token: Address;
}

export interface Metrics {
  served: number;
  impressions: number;
  clicks: number;
  views: number;
  acquisitions: number;
  /** Clicks per billed impression. */
  ctr: number;
  spend: string;
}

export interface Analytics {
  timeZone: string;
  from: string;
  to: string;
  budget: {
    funded: boolean;
    onChainRemaining: string;
    billed: string;
    settled: string;
    /** On-chain remaining less billed but unsettled. */
    available: string;
  };
  totals: Metrics;
  nodes: (Metrics & { nodeId: string })[];
  /** Local dates (YYYY-MM-DD) in the brand's zone, only those with events. */
  days: (Metrics & { date: string })[];
}

/** The escrow as the API's chain mirror shows it. */
export interface Mirror {
  advertiser: Address;
  end: number;
  closedEarly: boolean;
  /** Unix seconds; absent when the API does not know the grace period. */
  withdrawableAt: number | null;
  funded: string;
  debited: string;
  withdrawn: string;
  remaining: string;
  /** The latest block that changed this escrow. */
  block: number;
}

/** The mirror's view of an escrow campaign; null until the indexer has seen it opened. */
export async function mirror(chainCampaignId: Hex): Promise<Mirror | null> {
  try {
    return await api.get<Mirror>(`/v1/escrow/campaigns/${chainCampaignId}`, { anonymous: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/**
 * Waits until the mirror shows the escrow as of `block` or later, so that the figures the
 * API derives from it agree with the chain after a transaction; false if it has not within
 * `ms`.
 */
export async function mirrorReaches(chainCampaignId: Hex, block: bigint, ms = 10_000): Promise<boolean> {
  const seen = await poll(() => mirror(chainCampaignId), (seen) => !!seen && BigInt(seen.block) >= block, ms, 250);
  return seen.done;
}

export const analytics = (campaign: Campaign) =>
  api.get<Analytics>(`/v1/campaigns/${campaign.id}/analytics`);
