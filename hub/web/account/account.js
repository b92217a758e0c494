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
 *
 * Every session end (logout, refused refresh) runs `client.deauth()`, which
 * makes the hub forget the user; the next sign-in's `auth` waits for it
 * (the hub refuses a second user on a connection that still has one).
 */
export function startAccount(ctx) {
  const root = document.getElementById("account");
  const link = document.getElementById("account-link");
  const status = trackPairStatus(ctx);
  let view = null;
  let forgotten = Promise.resolve(); // the last deauth, settled

  /** Makes the hub forget the user (after whatever forgetting is under way). */
  function forget() {
    forgotten = forgotten.then(() => ctx.client.deauth()).catch((error) => console.warn("deauth:", error?.code ?? error));
    return forgotten;
  }

  ctx.onPair((pair) => view?.setPair(pair));
  onSession((session, notice) => {
    if (session === null) {
      view?.stop();
      view = null;
      forget();
      fill(root, signInView(notice));
    } else if (session.reason === "login") {
      view?.stop();
      view = signedInView(ctx, status, root, { settled: () => forgotten, forget });
    } else {
      view?.reauth();
    }
    if (link) link.textContent = session === null ? "Sign in" : "Account";
  });
  fill(root, signInView());
}

/**
 * Builds the signed-in view into `root` and starts its feeds. `gate`:
 * {settled() → the pending deauth's promise, forget() → deauth again}.
 * Returns {stop, setPair, reauth}.
 */
function signedInView(ctx, status, root, gate) {
  const { client } = ctx;
  const shared = sharedState();
  const orders = openOrdersSection(client);
  const balances = balancesSection(client, shared);
  const funding = fundingSection(shared, balances.reload);
  const entry = orderEntrySection(ctx, shared, status, (order) => orders.update(order));
  const mfa = mfaSection();

  const live = el("span", { class: "acct-live", "data-testid": "live" });
  const out = el("button", { type: "button", class: "acct-small", "data-testid": "logout" }, "Log out");
  const toDeposit = el("a", { class: "acct-small acct-jump", href: "#acct-funding", "data-testid": "to-deposit" }, "Deposit");
  const header = el("div", { class: "acct-user" }, el("span", { class: "acct-email", "data-testid": "user-email", title: currentEmail() }, currentEmail()), live, toDeposit, out);
  const sections = el("div", { class: "acct-sections" }, funding.node, entry.node, orders.node, balances.node, mfa.node);
  fill(root, el("h2", { class: "acct-title" }, "Account"), header, sections);

  let stopped = false;
  let authed = false;
  let authing = false;
  let lastRescue = 0;
  const offs = [];

  function render() {
    live.textContent = shared.live ? "live" : shared.authError ? `no live updates (${shared.authError})` : "connecting…";
    live.dataset.live = String(shared.live);
    live.dataset.error = shared.authError ?? "";
    // Until identity is verified, getting ready comes first; then trading
    // does, with the deposit form kept just above the balances.
    const verified = shared.kyc === "VERIFIED";
    toDeposit.hidden = !verified;
    if (verified && funding.node.nextSibling !== balances.node) sections.insertBefore(funding.node, balances.node);
    if (!verified && sections.firstChild !== funding.node) sections.prepend(funding.node);
  }

  /** `auth` (after the previous user's deauth settled), then the private channels. */
  async function authenticate() {
    if (authing || authed || stopped) return;
    authing = true;
    try {
      await gate.settled();
      if (stopped) return;
      await client.auth(await freshToken(), { tokenProvider: freshToken });
      // Signed out while the hub was answering: it must forget this user again.
      if (stopped) return void gate.forget();
      await client.subscribe(["orders", "balances"]);
      if (stopped) return void gate.forget();
      authed = true;
      shared.set({ live: true, authError: null });
    } catch (error) {
      if (stopped) return;
      if (RETRY_ON_OPEN.has(error?.code)) return; // the next `open` tries again
      shared.set({ live: false, authError: error?.code ?? error?.message ?? String(error) });
    } finally {
      authing = false;
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
  // The session's end runs the deauth (startAccount), whatever ended it.
  out.addEventListener("click", () => {
    out.disabled = true;
    logout();
  });

  for (const section of [orders, balances, funding, entry]) section.start();
  render();
  authenticate();

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
