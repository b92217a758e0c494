// A funded sandbox account over the hub's REST API (docs/API.md), for the
// order tests: register, login, KYC (the sandbox verifies after ~1 s),
// a USD deposit through the sandbox "stripe" provider (confirmed by the
// provider's webhook after ~0.5 s).

import { forbid } from "./hub.mjs";
import { waitUntil } from "./wait.mjs";

/** A JSON request; throws with the status and body on an unexpected status. */
export async function rest(base, method, path, { token, body, expect = [200, 201, 202, 204] } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const answer = await fetch(base + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000),
  });
  const text = await answer.text();
  if (!expect.includes(answer.status)) throw new Error(`${method} ${path}: ${answer.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Registers and logs in a fresh user, gets KYC verified and deposits `usd`
 * USD; resolves when the deposit shows in the balances.
 * @returns {Promise<{email: string, password: string, token: string}>}
 */
export async function fundedAccount(base, usd = "10000.00") {
  const email = `js-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
  const password = "Correct-Horse-9-battery";
  // No hub log may hold them (./hublog.mjs).
  forbid("test user's email", email);
  forbid("test user's password", password);
  await rest(base, "POST", "/auth/register", { body: { email, password } });
  const token = await login(base, email, password);
  await rest(base, "POST", "/users/kyc-documents", {
    token, body: { document_type: "passport", content_base64: Buffer.from("a passport scan").toString("base64") },
  });
  await waitUntil(async () => (await rest(base, "GET", "/users/kyc-status", { token })).kyc_status === "VERIFIED", 10_000, "KYC VERIFIED");
  await rest(base, "POST", "/fiat/deposit", {
    token, body: { currency: "USD", amount: usd, provider: "stripe", idempotency_key: `dep-${email}` },
  });
  await waitUntil(async () => {
    const balances = await rest(base, "GET", "/wallets/balances", { token });
    return balances.some((b) => b.asset === "USD" && Number(b.available) > 0);
  }, 15_000, "USD deposit credited", 200);
  return { email, password, token };
}

/** Logs in (a new session) and resolves with its access token. */
export async function login(base, email, password) {
  const tokens = await rest(base, "POST", "/auth/login", { body: { email, password } });
  forbid("access token", tokens.access_token);
  forbid("refresh token", tokens.refresh_token);
  return tokens.access_token;
}
