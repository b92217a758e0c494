// The account part's session through a page's life (hub/web/account/): the
// private channels after the hub drops the socket, log out and another user
// in the same page, a socket session the hub refuses, more open orders than
// one REST page. Run: `node --test account-session.test.mjs`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, forbid, startProxy, DESKTOP } from "./support.mjs";
import { setUp, tearDown, PASSWORD, openAccount, waitFor, shot, registerThroughPage, units, noProblems, noStoredTokens, verifyAndDeposit, placeRestingBuy } from "./account-support.mjs";

let hub;

before(async () => {
  ({ hub } = await setUp());
}, { timeout: 90_000 });

after(tearDown);

test("after the hub drops the socket the private channels come back", { timeout: 60_000 }, async () => {
  const proxy = await startProxy(hub.port);
  const { page, context, problems, tokens, sent } = await openAccount(DESKTOP, `http://127.0.0.1:${proxy.port}`);
  try {
    await registerThroughPage(page, `drop-${Date.now()}@example.com`);
    await page.click("[data-testid=kyc-verify]");
    await waitFor(page, "KYC VERIFIED", () => document.getElementById("kyc-status")?.dataset.status === "VERIFIED", undefined, 15_000);
    await page.fill("#deposit-amount", "500");
    await page.click("[data-testid=deposit]");
    await waitFor(page, "500 USD available", () => document.querySelector('#account tr[data-asset="USD"] [data-field="available"]')?.textContent === "500.00000000", undefined, 15_000);

    const authsBefore = sent.filter((f) => f.includes('"op":"auth"')).length;
    proxy.dropAll();
    await waitFor(page, "a reconnect", () => window.nax.client.stats.reconnects >= 1);
    await waitFor(page, "live again", () => document.querySelector("[data-testid=live]")?.dataset.live === "true");
    assert.ok(sent.filter((f) => f.includes('"op":"auth"')).length > authsBefore, "the socket authenticated again");

    // An order placed now, then cancelled over REST (not by the page): only
    // the `orders` and `balances` channels can tell the page.
    await page.fill("#entry-price", "1000.00");
    await page.fill("#entry-qty", "0.01");
    await page.click("[data-testid=place]");
    await waitFor(page, "the order open", () => document.querySelectorAll("#account li.acct-order").length === 1);
    await waitFor(page, "10 USD locked", () => document.querySelector('#account tr[data-asset="USD"] [data-field="locked"]')?.textContent === "10.00000000");
    const id = await page.getAttribute("#account li.acct-order", "data-order-id");
    const cancel = await fetch(`${hub.base}/orders/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${tokens.at(-2)}` } });
    assert.equal(cancel.status, 200, "cancelled over REST");
    await waitFor(page, "the order gone from the list", () => document.querySelectorAll("#account li.acct-order").length === 0);
    await waitFor(page, "USD unlocked", () => document.querySelector('#account tr[data-asset="USD"] [data-field="locked"]')?.textContent === "0.00000000");
    await shot(page, "10-after-drop", "#acct-orders");
    await noProblems(problems);
  } finally {
    await context.close();
    await proxy.close();
  }
});

test("log out and another user signs in in the same page: live, trades, and sees only their own orders", { timeout: 90_000 }, async () => {
  const { page, context, problems, tokens } = await openAccount(DESKTOP);
  try {
    assert.equal(await page.textContent("#account-link"), "Sign in");
    const a = `first-${Date.now()}@example.com`;
    await registerThroughPage(page, a);
    assert.equal(await page.textContent("#account-link"), "Account");
    await verifyAndDeposit(page, "1000");
    const aOrder = await placeRestingBuy(page);

    await page.click("[data-testid=logout]");
    await waitFor(page, "the sign-in form after logout", () => document.querySelector("#acct-signin"));
    const b = `second-${Date.now()}@example.com`;
    await registerThroughPage(page, b);
    await verifyAndDeposit(page, "500");

    // A ladder row's price goes into the order form (a mouse click, then Enter on a focused row).
    await page.evaluate(() => {
      window.announced = [];
      document.addEventListener("nax:price", (e) => window.announced.push(e.detail));
    });
    await page.locator("#book-bids .level:not([hidden])").nth(3).click();
    await waitFor(page, "a price announced", () => window.announced.length === 1);
    const clicked = await page.evaluate(() => window.announced[0]);
    assert.equal(clicked.pair, "BTC-USD");
    assert.match(clicked.price, /^\d+\.\d{2}$/);
    assert.equal(await page.inputValue("#entry-price"), clicked.price, "the clicked price is in the form");
    // The live ladder repaints its rows in place, so the focused row's
    // price may change between focusing it and pressing Enter: compare the
    // form with what Enter announced, not with an earlier reading.
    await page.evaluate(() => document.querySelector("#book-asks .level:not([hidden]):last-child").focus());
    await page.keyboard.press("Enter");
    await waitFor(page, "a price announced by Enter", () => window.announced.length === 2);
    const byKey = await page.evaluate(() => window.announced[1]);
    assert.equal(byKey.pair, "BTC-USD");
    await waitFor(page, "the focused ask's price in the form", (p) => document.getElementById("entry-price").value === p, byKey.price);
    await shot(page, "11-ladder-price");

    const bOrder = await placeRestingBuy(page);
    const listed = await page.$$eval("#account li.acct-order", (list) => list.map((li) => li.dataset.orderId));
    assert.deepEqual(listed, [bOrder], `only B's order is listed (A's was ${aOrder})`);
    assert.equal(await page.getAttribute("[data-testid=live]", "data-live"), "true");
    await shot(page, "12-second-user", "#acct-orders");
    await noStoredTokens(page, tokens);
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("a refused socket session stays shown, and order entry says why it is closed", { timeout: 45_000 }, async () => {
  const { page, context, problems } = await openAccount(DESKTOP);
  try {
    // Between the page and the hub: every `auth` is answered `unauthorized`.
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const frame = JSON.parse(String(message));
        if (frame.op === "auth") ws.send(JSON.stringify({ type: "error", id: frame.id, code: "unauthorized", message: "token refused (test)" }));
        else server.send(message);
      });
      server.onMessage((message) => ws.send(message));
    });
    await page.reload();
    await waitFor(page, "the sign-in form", () => document.querySelector("#acct-signin"));
    const email = `refused-${Date.now()}@example.com`;
    await page.fill("#acct-email", email);
    await page.fill("#acct-password", PASSWORD);
    await page.click("[data-testid=register]");
    await waitFor(page, "the refusal shown", () => document.querySelector("[data-testid=live]")?.dataset.error === "unauthorized");
    // Later redraws (KYC status, balances) keep it.
    await waitFor(page, "KYC status read", () => document.getElementById("kyc-status")?.dataset.status === "NONE");
    await waitFor(page, "balances read", () => document.querySelector('#account tr[data-asset="USD"]'));
    assert.equal(await page.textContent("[data-testid=live]"), "no live updates (unauthorized)");
    assert.equal(await page.getAttribute("[data-testid=live]", "data-live"), "false");
    assert.match(await page.textContent("[data-testid=entry-blocked]"), /^Order entry closed: the hub refused the trading session \(unauthorized\)\./);
    assert.equal(await page.isDisabled("[data-testid=place]"), true);
    await shot(page, "13-session-refused");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("more than 100 open orders: the page reads them all (paged)", { timeout: 90_000 }, async () => {
  // A hub without the per-user request limit (101 orders in a few seconds).
  const openHub = await startHub({ toml: "[api]\nrequests_per_minute = 0\n" });
  try {
    const call = async (method, path, body, token) => {
      const headers = { "content-type": "application/json" };
      if (token) headers.authorization = `Bearer ${token}`;
      const answer = await fetch(openHub.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const json = answer.status === 204 ? null : await answer.json();
      if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(json)}`);
      return json;
    };
    const until = async (what, check) => {
      const deadline = Date.now() + 15_000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`${what} within 15 s`);
        await new Promise((ok) => setTimeout(ok, 200));
      }
    };
    // The account is made ready over REST, with 101 resting orders, before the page signs in.
    const email = `many-${Date.now()}@example.com`;
    await call("POST", "/auth/register", { email, password: PASSWORD });
    const { access_token: token } = await call("POST", "/auth/login", { email, password: PASSWORD });
    forbid("test user's email", email);
    forbid("access token", token);
    await call("POST", "/users/kyc-documents", { document_type: "passport", content_base64: Buffer.from(`test ${email}`).toString("base64") }, token);
    await until("KYC verified", async () => (await call("GET", "/users/kyc-status", undefined, token)).kyc_status === "VERIFIED");
    await call("POST", "/fiat/deposit", { currency: "USD", amount: "100.00", provider: "stripe", idempotency_key: crypto.randomUUID() }, token);
    await until("USD credited", async () => (await call("GET", "/wallets/balances", undefined, token)).some((b) => b.asset === "USD" && units(b.available, 8) > 0n));
    const ids = [];
    for (let batch = 0; batch < 101; batch += 20) {
      const placed = await Promise.all(
        Array.from({ length: Math.min(20, 101 - batch) }, (_, i) =>
          call("POST", "/orders", { client_order_id: `many-${batch + i}`, pair: "BTC-USD", side: "buy", type: "limit", price: "1000.00", qty: "0.000010" }, token),
        ),
      );
      ids.push(...placed.map((o) => o.order_id));
    }
    assert.equal(new Set(ids).size, 101);

    const { page, context, problems } = await openAccount(DESKTOP, openHub.base);
    try {
      await page.fill("#acct-email", email);
      await page.fill("#acct-password", PASSWORD);
      await page.click("[data-testid=sign-in]");
      await waitFor(page, "all 101 orders listed", () => document.querySelectorAll("#account li.acct-order").length === 101, undefined, 15_000);
      assert.equal(await page.textContent("#orders-count"), "(101)");
      const listed = await page.$$eval("#account li.acct-order", (list) => list.map((li) => li.dataset.orderId));
      assert.deepEqual(new Set(listed), new Set(ids), "exactly the orders placed");
      await noProblems(problems);
    } finally {
      await context.close();
    }
  } finally {
    await openHub.stop();
  }
});
