// The user's wallet: found through EIP-6963 (every injected wallet announces itself), else
// the legacy `window.ethereum`; reads and writes go through it with viem, so the pages need
// no RPC endpoint of their own. A wrong chain is detected and a switch offered; what the
// wallet refuses becomes a sentence, never a dead page.

import { BaseError, createClient, custom, getAddress, type Account, type Address, type Client, type EIP1193Provider, type Transport } from 'viem';

export interface WalletInfo {
  uuid: string;
  name: string;
  icon: string;
  rdns: string;
}

export interface Discovered {
  info: WalletInfo;
  provider: EIP1193Provider;
}

const CHOSEN = 'adescrow.wallet';

/** Wallets that answer an EIP-6963 request within `ms`, then `window.ethereum` if none did. */
export async function discover(ms = 150): Promise<Discovered[]> {
  const found = new Map<string, Discovered>();
  const onAnnounce = (event: Event) => {
    const detail = (event as CustomEvent<Discovered>).detail;
    if (detail?.info?.uuid && detail.provider) found.set(detail.info.uuid, detail);
  };
  window.addEventListener('eip6963:announceProvider', onAnnounce);
  window.dispatchEvent(new Event('eip6963:requestProvider'));
  // Injected wallets answer synchronously; a short wait covers those that load late.
  if (found.size === 0) await new Promise((r) => setTimeout(r, ms));
  window.removeEventListener('eip6963:announceProvider', onAnnounce);
  const legacy = (window as { ethereum?: EIP1193Provider }).ethereum;
  if (found.size === 0 && legacy) {
    found.set('legacy', { info: { uuid: 'legacy', name: 'Browser wallet', icon: '', rdns: 'legacy' }, provider: legacy });
  }
  return [...found.values()];
}

/** The wallet the user chose last time, if it is still there. */
export function remembered(wallets: Discovered[]): Discovered | undefined {
  const rdns = localStorage.getItem(CHOSEN);
  return wallets.find((w) => w.info.rdns === rdns);
}

export class Wallet {
  /**
   * A bare viem client over the wallet: pages call viem's actions on it
   * (`readContract(wallet.client, …)`), which keeps the bundle to the actions they use.
   */
  readonly client: Client<Transport, undefined, Account>;

  private constructor(
    readonly info: WalletInfo,
    readonly provider: EIP1193Provider,
    readonly account: Address,
    public chainId: number,
  ) {
    this.client = createClient({ account, transport: custom(provider) });
  }

  /** Asks the wallet for its account (a prompt unless the site is already allowed). */
  static async connect(found: Discovered, prompt: boolean): Promise<Wallet | null> {
    const method = prompt ? 'eth_requestAccounts' : 'eth_accounts';
    const accounts = (await found.provider.request({ method } as never)) as string[];
    if (!accounts.length) return null;
    localStorage.setItem(CHOSEN, found.info.rdns);
    const chainId = Number(await found.provider.request({ method: 'eth_chainId' }));
    return new Wallet(found.info, found.provider, getAddress(accounts[0]), chainId);
  }

  static forget(): void {
    localStorage.removeItem(CHOSEN);
  }

  /** Asks the wallet to move to `chainId`. */
  async switchChain(chainId: number): Promise<void> {
    await this.provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: `0x${chainId.toString(16)}` }] });
    this.chainId = Number(await this.provider.request({ method: 'eth_chainId' }));
  }

  /** Calls `listener` when the user changes account or chain in the wallet. */
  onChange(listener: () => void): void {
    this.provider.on('accountsChanged', listener);
    this.provider.on('chainChanged', listener);
  }
}

/** EIP-1193 and JSON-RPC codes a user can act on, in words. */
const CODES: Record<number, string> = {
  4001: 'You declined the request in your wallet; nothing was signed or sent.',
  4100: 'The wallet has not given this page your account: connect it first.',
  4200: 'Your wallet does not support this request.',
  4900: 'Your wallet is not connected to any chain.',
  4901: 'Your wallet is on another chain: switch it and try again.',
  4902: 'Your wallet does not know this chain: add it in the wallet, then switch.',
  [-32002]: 'Your wallet already has a request waiting: open it.',
};

/** The code of the first error in a chain of causes that carries one. */
function codeOf(error: unknown): number | undefined {
  let e: unknown = error;
  for (let depth = 0; e && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when the user said no in the wallet. */
export const isRejection = (error: unknown): boolean => codeOf(error) === 4001;

/** What went wrong with a wallet or chain call, as one sentence for the page. */
export function walletMessage(error: unknown): string {
  const code = codeOf(error);
  if (code !== undefined && CODES[code]) return CODES[code];
  if (error instanceof BaseError) return error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}
