// The signed-in session: the access and refresh tokens live in this
// module's variables only (never localStorage, sessionStorage or cookies),
// are refreshed before the access token expires (POST /auth/refresh) and
// forgotten on logout. Every authenticated REST call of the account part
// goes through `api`.

import { request, ApiError } from "../http.js";

/** Refresh a minute before the access token expires (a fifth of its life when that is shorter). */
const REFRESH_MARGIN_MS = 60_000;
const RETRY_MS = 5_000;
const margin = (ttlMs) => Math.min(REFRESH_MARGIN_MS, ttlMs / 5);

let tokens = null; // {access, refresh, expiresAt, margin, email, mfa}
let refreshing = null; // the refresh in flight (refresh tokens are single use)
let timer = null;
const listeners = new Set();

/** The signed-in email, or null. */
export function currentEmail() {
  return tokens?.email ?? null;
}

/**
 * Whether this sign-in is known to have two-factor on: it signed in with a
 * code, or turned two-factor on since (the API has no read of the setting).
 */
export function mfaKnownOn() {
  return tokens?.mfa ?? false;
}

/** Remembers that two-factor is on for the signed-in account (see mfaKnownOn). */
export function noteMfaOn() {
  if (tokens) tokens.mfa = true;
}

/**
 * Calls `listener({email, reason: "login" | "refresh"})` after every
 * sign-in and token refresh, and `listener(null, notice)` when the session
 * ends (`notice`: why, for people, when it was not a logout). Returns the
 * unsubscriber.
 */
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** `POST /auth/register`; throws ApiError (`weak_password`, `email_taken`, `invalid_email`, ...). */
export async function register(email, password) {
  return request("POST", "/auth/register", { email, password });
}

/**
 * `POST /auth/login` (with `totp` when the account has two-factor on) and
 * keeps the tokens. Throws ApiError: `mfa_required` means "ask for the
 * code and call again with it".
 */
export async function login(email, password, totp) {
  const body = { email, password };
  if (totp) body.totp = totp;
  const answer = await request("POST", "/auth/login", body);
  keep(answer, email.trim().toLowerCase(), Boolean(totp), "login");
}

/**
 * A valid access token: the current one, or a fresh one when it expires
 * within the margin. What the WebSocket client's `tokenProvider` calls.
 */
export async function freshToken() {
  if (!tokens) throw new ApiError(401, "unauthorized", "signed out");
  if (tokens.expiresAt - Date.now() > tokens.margin) return tokens.access;
  await refresh();
  return tokens.access;
}

/** Trades the refresh token for a new pair (one refresh at a time). Ends the session when the hub refuses it. */
export function refresh() {
  if (!tokens) return Promise.reject(new ApiError(401, "unauthorized", "signed out"));
  if (!refreshing) {
    const spent = tokens;
    refreshing = request("POST", "/auth/refresh", { refresh_token: spent.refresh })
      .then((answer) => {
        if (tokens === spent) keep(answer, spent.email, spent.mfa, "refresh");
      })
      .catch((error) => {
        if (error.status === 401 && tokens === spent) end("Your session ended; sign in again.");
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** `POST /auth/logout` (best effort) and forgets the tokens either way. */
export async function logout() {
  const access = tokens?.access;
  end();
  if (access) {
    try {
      await request("POST", "/auth/logout", undefined, access);
    } catch {
      // the tokens are forgotten here whatever the hub says
    }
  }
}

/**
 * An authenticated REST call: `api("GET", "/wallets/balances")`. A 401
 * is retried once after a refresh; throws ApiError.
 */
export async function api(method, path, body) {
  const token = await freshToken();
  try {
    return await request(method, path, body, token);
  } catch (error) {
    if (error.status !== 401 || !tokens) throw error;
    await refresh();
    return request(method, path, body, tokens.access);
  }
}

function keep(answer, email, mfa, reason) {
  const ttlMs = answer.expires_in * 1000;
  tokens = {
    access: answer.access_token,
    refresh: answer.refresh_token,
    expiresAt: Date.now() + ttlMs,
    margin: margin(ttlMs),
    email,
    mfa,
  };
  schedule(ttlMs - tokens.margin);
  for (const listener of listeners) listener({ email, reason });
}

/** Refreshes after `ms`; a failure that did not end the session (network) is tried again in 5 s. */
function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => {
    refresh().catch((error) => {
      console.warn("token refresh failed:", error.code);
      if (tokens) schedule(RETRY_MS);
    });
  }, ms);
}

function end(notice = null) {
  const was = tokens;
  tokens = null;
  clearTimeout(timer);
  timer = null;
  if (was) for (const listener of listeners) listener(null, notice);
}
