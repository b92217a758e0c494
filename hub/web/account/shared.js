// What the signed-in sections share and react to: the KYC status, the
// balances by asset and whether the socket session is authenticated.
// One small observable object per sign-in.

/**
 * A fresh shared state: `state.kyc` ("NONE" | "PENDING" | "VERIFIED" |
 * "REJECTED" | null before it is read), `state.balances` (Map asset →
 * Balance), `state.live` (true while the socket is authenticated and
 * subscribed to `orders` and `balances`), `state.authError` (why the hub
 * refused the socket session, or null). `set(patch)` merges and tells
 * every `watch` listener.
 */
export function sharedState() {
  const listeners = new Set();
  const state = {
    kyc: null,
    balances: new Map(),
    live: false,
    authError: null,
    set(patch) {
      Object.assign(state, patch);
      for (const listener of listeners) listener(state);
    },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return state;
}
