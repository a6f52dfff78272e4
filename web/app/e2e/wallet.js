// The test wallet: an EIP-1193 provider announced through EIP-6963, injected into every
// document of a tab before the page's own scripts run (Page.addScriptToEvaluateOnNewDocument).
// It holds no key and no state: each request goes to the driver (web/app/e2e/browser.mjs)
// through the CDP binding `__adescrowWallet`, which answers, forwards to anvil's unlocked
// accounts or rejects as a user would, and replies through `__adescrowWalletReply`. So the
// page talks to it exactly as to a browser extension, and the page's CSP never sees anvil.
(() => {
  const pending = new Map();
  const listeners = new Map();
  let next = 1;

  window.__adescrowWalletReply = (id, result, error) => {
    const call = pending.get(id);
    if (!call) return;
    pending.delete(id);
    if (error) {
      const e = new Error(error.message);
      e.code = error.code;
      if (error.data !== undefined) e.data = error.data;
      call.reject(e);
    } else {
      call.resolve(result);
    }
  };
  window.__adescrowWalletEmit = (event, data) => {
    for (const listener of listeners.get(event) || []) listener(data);
  };

  const provider = {
    request({ method, params }) {
      return new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        window.__adescrowWallet(JSON.stringify({ id, method, params: params === undefined ? [] : params }));
      });
    },
    on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(listener);
      return provider;
    },
    removeListener(event, listener) {
      const set = listeners.get(event);
      if (set) set.delete(listener);
      return provider;
    },
  };

  const info = Object.freeze({
    uuid: '5c0d1a7e-0000-4000-8000-00000000ad35',
    name: 'adescrow test wallet',
    icon: 'data:image/svg+xml,%3Csvg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"%3E%3Crect width="8" height="8" fill="%23357"/%3E%3C/svg%3E',
    rdns: 'dev.adescrow.test-wallet',
  });
  const announce = () =>
    window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze({ info, provider }) }));
  window.addEventListener('eip6963:requestProvider', announce);
  announce();
})();
