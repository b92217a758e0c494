// The account part of the trading page (#account): sign-in, then the
// signed-in view (order entry, open orders, balances, getting ready to
// trade, two-factor) fed over REST at sign-in and by the socket's private
// channels (`orders`, `balances`) after `auth`.

import { el, fill } from "../dom.js";
import { onSession, freshToken, refresh, logout, currentEmail } from "./session.js";
import { signInView } from "./signin.js";
import { sharedState } from "./shared.js";
import { trackPairStatus } from "./pair-status.js";
import { fundingSection } from "./funding.js";
import { balancesSection } from "./balances.js";
import { openOrdersSection } from "./open-orders.js";
import { orderEntrySection } from "./order-entry.js";
import { mfaSection } from "./mfa.js";

/** Socket failures after which `auth` is tried again on the next open. */
const RETRY_ON_OPEN = new Set(["disconnected", "timeout", "closed"]);

/**
 * Fills #account. `ctx` = {client, markets, pair, onPair, selectPair}
 * (app.js); `client` is not connected yet when this runs.
 */
export function startAccount(ctx) {
  const root = document.getElementById("account");
  const status = trackPairStatus(ctx);
  let view = null;

  ctx.onPair((pair) => view?.setPair(pair));
  onSession((session, notice) => {
    if (session === null) {
      view?.stop();
      view = null;
      fill(root, signInView(notice));
    } else if (session.reason === "login") {
      view?.stop();
      view = signedInView(ctx, status, root);
    } else {
      view?.reauth();
    }
  });
  fill(root, signInView());
}

/** Builds the signed-in view into `root` and starts its feeds. Returns {stop, setPair, reauth}. */
function signedInView(ctx, status, root) {
  const { client } = ctx;
  const shared = sharedState();
  const orders = openOrdersSection(client);
  const balances = balancesSection(client, shared);
  const funding = fundingSection(shared, balances.reload);
  const entry = orderEntrySection(ctx, shared, status, (order) => orders.update(order));
  const mfa = mfaSection();

  const live = el("span", { class: "acct-live", "data-testid": "live" });
  const out = el("button", { type: "button", class: "acct-small", "data-testid": "logout" }, "Log out");
  const header = el("div", { class: "acct-user" }, el("span", { class: "acct-email", "data-testid": "user-email", title: currentEmail() }, currentEmail()), live, out);
  const sections = el("div", { class: "acct-sections" }, funding.node, entry.node, orders.node, balances.node, mfa.node);
  fill(root, el("h2", { class: "acct-title" }, "Account"), header, sections);

  let stopped = false;
  let authed = false;
  let lastRescue = 0;
  const offs = [];

  function render() {
    live.textContent = shared.live ? "live" : "connecting…";
    live.dataset.live = String(shared.live);
    // Until identity is verified, getting ready comes first; then trading does.
    const verified = shared.kyc === "VERIFIED";
    if (verified && sections.firstChild === funding.node) sections.insertBefore(funding.node, mfa.node);
    if (!verified && sections.firstChild !== funding.node) sections.prepend(funding.node);
  }

  async function authenticate() {
    try {
      await client.auth(await freshToken(), { tokenProvider: freshToken });
      await client.subscribe(["orders", "balances"]);
      if (stopped) return;
      authed = true;
      shared.set({ live: true });
    } catch (error) {
      if (stopped) return;
      if (RETRY_ON_OPEN.has(error?.code)) return; // the next `open` tries again
      live.textContent = `no live updates (${error?.code ?? error?.message ?? error})`;
    }
  }

  offs.push(
    shared.watch(render),
    client.on("state", ({ state }) => {
      if (state !== "open") {
        if (shared.live) shared.set({ live: false });
      } else if (!authed) {
        authenticate();
      }
    }),
    // After a reconnect the client sends `auth` before the public subscribe
    // whose answer this is; private channels keep no history, so what may
    // have changed meanwhile is read again.
    client.on("resumed", () => {
      if (!authed || stopped) return;
      shared.set({ live: true });
      balances.reload().catch((error) => console.warn("balances:", error.code));
      orders.reload().catch((error) => console.warn("orders:", error.code));
    }),
    // The hub ended the socket session (token expired meanwhile, or revoked):
    // a refresh either brings a new token (handed over by reauth) or ends
    // the session here too. At most one such refresh per 10 s.
    client.on("error", (error) => {
      if (error.code !== "unauthorized" || !authed || stopped || Date.now() - lastRescue < 10_000) return;
      lastRescue = Date.now();
      shared.set({ live: false });
      refresh().catch((failure) => console.warn("session:", failure.code));
    }),
  );
  out.addEventListener("click", async () => {
    out.disabled = true;
    try {
      await client.deauth();
    } catch {
      // signed out over REST below either way
    }
    await logout();
  });

  for (const section of [orders, balances, funding, entry]) section.start();
  render();
  if (client.state === "open") authenticate();

  return {
    setPair: entry.setPair,
    /** After a token refresh: hand the socket the new token (same user: replaces it). */
    reauth() {
      if (!authed) return;
      freshToken()
        .then((token) => client.auth(token, { tokenProvider: freshToken }))
        .then(() => stopped || shared.set({ live: true }))
        .catch((error) => console.warn("re-auth:", error?.code ?? error));
    },
    stop() {
      stopped = true;
      for (const off of offs) off();
      for (const section of [orders, balances, funding, entry]) section.stop();
    },
  };
}
