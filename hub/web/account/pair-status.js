// Every pair's market state (online / stale / halted / resyncing and why):
// first from GET /markets (ctx.markets), then from the socket's `status`
// channel. Order entry is open only while its pair is `online`.

/**
 * Starts tracking (subscribes `status`; the market part may hold it too,
 * which only restarts it with a fresh table). Returns
 * {get(pair) → {state, reason}, watch(listener) → unwatch}.
 */
export function trackPairStatus(ctx) {
  const states = new Map(ctx.markets.map((m) => [m.pair, { state: m.status ?? "online", reason: m.status_reason ?? null }]));
  const listeners = new Set();
  ctx.client.on("status", ({ pairs }) => {
    for (const p of pairs) states.set(p.pair, { state: p.state, reason: p.reason });
    for (const listener of listeners) listener();
  });
  // Remembered by the client and subscribed again after every reconnect.
  Promise.resolve()
    .then(() => ctx.client.subscribe(["status"]))
    .catch((error) => console.warn("status channel:", error?.code ?? error));
  return {
    get: (pair) => states.get(pair) ?? { state: "online", reason: null },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
