// What the account tests share (account.test.mjs, account-session.test.mjs):
// one hub and one Chromium per test file (setUp/tearDown), a page of the hub
// that records the tokens it was given and its WebSocket frames, bounded
// waits that say what #account showed, and the common steps of a user.

import assert from "node:assert/strict";
import { startHub, forbid, launchBrowser, openPage, screenshot, DESKTOP } from "./support.mjs";

export const PASSWORD = "Sandbox-Trader-42!";
// No hub log may hold it, nor the emails and tokens below (clients/js/test/support/hublog.mjs).
forbid("test user's password", PASSWORD);

/** The file's hub and browser, set by setUp. */
export const env = { hub: null, browser: null };

/** Starts the file's hub and Chromium (call in `before`). */
export async function setUp() {
  env.hub = await startHub();
  env.browser = await launchBrowser();
  return env;
}

/** Stops them (call in `after`). */
export async function tearDown() {
  await env.browser?.close();
  await env.hub?.stop();
}

/**
 * A page of the hub at `base` at `viewport` (openPage records console
 * errors, page errors and CSP violations), recording every
 * token the hub hands out (to look for them later) and the WebSocket frames
 * (`sent`, `received`).
 */
export async function openAccount(viewport = DESKTOP, base = env.hub.base) {
  const opened = await openPage(env.browser, viewport);
  const tokens = [];
  opened.tokens = tokens;
  opened.sent = [];
  opened.received = [];
  opened.page.on("websocket", (ws) => {
    ws.on("framesent", (frame) => opened.sent.push(String(frame.payload)));
    ws.on("framereceived", (frame) => opened.received.push(String(frame.payload)));
  });
  opened.page.on("response", async (response) => {
    if (!/\/auth\/(login|refresh)$/.test(new URL(response.url()).pathname) || !response.ok()) return;
    const body = await response.json().catch(() => null);
    if (body?.access_token) {
      tokens.push(body.access_token, body.refresh_token);
      forbid("access token", body.access_token);
      forbid("refresh token", body.refresh_token);
    }
  });
  await opened.page.goto(base + "/");
  await waitFor(opened.page, "the sign-in form", () => document.querySelector("#acct-signin"));
  return opened;
}

/** Waits until `fn(arg)` is truthy in the page, or fails with `message` and what #account shows. */
export async function waitFor(page, message, fn, arg, timeout = 10_000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (error) {
    const seen = await page.evaluate(() => document.getElementById("account")?.innerText.replace(/\s+/g, " ").slice(0, 600)).catch(() => "?");
    throw new Error(`${message} (within ${timeout} ms; #account shows ${JSON.stringify(seen)}): ${error.message.split("\n")[0]}`);
  }
}

/** Scrolls `selector` into view and saves target/screenshots/account-<name>.png. */
export async function shot(page, name, selector) {
  if (selector) await page.locator(selector).first().scrollIntoViewIfNeeded();
  return screenshot(page, `account-${name}`);
}

/** Registers `email` through the page and waits for the signed-in view with a live socket session. */
export async function registerThroughPage(page, email) {
  forbid("test user's email", email);
  await page.fill("#acct-email", email);
  await page.fill("#acct-password", PASSWORD);
  await page.click("[data-testid=register]");
  await waitFor(page, "signed in after registering", (e) => document.querySelector("[data-testid=user-email]")?.textContent === e, email);
  await waitFor(page, "the socket session live", () => document.querySelector("[data-testid=live]")?.dataset.live === "true");
}

/** One balance cell's text (`field`: available / locked). */
export const balance = (page, asset, field) =>
  page.evaluate(([a, f]) => document.querySelector(`#account tr[data-asset="${a}"] [data-field="${f}"]`)?.textContent ?? null, [asset, field]);

/** Exact decimal → BigInt units at `scale` decimals. */
export const units = (text, scale) => {
  const [whole, fraction = ""] = text.split(".");
  return BigInt(whole + fraction.padEnd(scale, "0"));
};

export async function noProblems(problems) {
  assert.deepEqual(problems, [], "console errors, page errors or CSP violations");
}

/** No token anywhere a script or another page could read it back. */
export async function noStoredTokens(page, tokens) {
  assert.ok(tokens.length >= 2, "the test saw the tokens the hub issued");
  const stored = await page.evaluate(() => ({
    local: JSON.stringify(Object.entries(localStorage)),
    session: JSON.stringify(Object.entries(sessionStorage)),
    cookie: document.cookie,
  }));
  for (const token of tokens) {
    for (const [where, text] of Object.entries(stored)) assert.ok(!text.includes(token), `a token is in ${where}`);
  }
  assert.deepEqual(stored, { local: "[]", session: "[]", cookie: "" }, "nothing stored at all");
}

/** Verifies identity and deposits `amount` USD through the page (the user is signed in). */
export async function verifyAndDeposit(page, amount) {
  await page.click("[data-testid=kyc-verify]");
  await waitFor(page, "KYC VERIFIED", () => document.getElementById("kyc-status")?.dataset.status === "VERIFIED", undefined, 15_000);
  await page.fill("#deposit-amount", amount);
  await page.click("[data-testid=deposit]");
  await waitFor(page, `${amount} USD available`, (a) => document.querySelector('#account tr[data-asset="USD"] [data-field="available"]')?.textContent === `${a}.00000000`, amount, 15_000);
}

/** Places a limit buy of 0.001 BTC at half the best bid (it rests) and returns its order id. */
export async function placeRestingBuy(page) {
  const ticker = await (await fetch(env.hub.base + "/markets/BTC-USD/ticker")).json();
  const far = units(ticker.bid, 2) / 2n;
  const price = `${far / 100n}.${String(far % 100n).padStart(2, "0")}`;
  await page.fill("#entry-price", price);
  await page.fill("#entry-qty", "0.001");
  await page.click("[data-testid=place]");
  const row = await waitFor(page, "the resting buy in open orders", (p) => [...document.querySelectorAll("#account li.acct-order")].find((li) => li.querySelector('[data-field="price"]').textContent === p), price);
  return row.evaluate((li) => li.dataset.orderId);
}
