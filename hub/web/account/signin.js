// The signed-out view: email + password, "Sign in" or "Create account"
// (register, then log in at once), and the 6-digit code when the account
// has two-factor on (`mfa_required`).

import { el } from "../dom.js";
import { field, messageLine, say, busy } from "./ui.js";
import { login, register } from "./session.js";

/** The password rule of POST /auth/register, for people. */
export const PASSWORD_RULE = "12–128 characters with an upper-case letter, a lower-case letter, a digit and a symbol.";

/** The rule checked here too, so a weak password is explained before the round trip (the hub decides). */
export function passwordProblem(password) {
  if (password.length < 12 || password.length > 128) return "The password must be 12–128 characters long.";
  const missing = [];
  if (!/[A-Z]/.test(password)) missing.push("an upper-case letter");
  if (!/[a-z]/.test(password)) missing.push("a lower-case letter");
  if (!/[0-9]/.test(password)) missing.push("a digit");
  if (!/[^A-Za-z0-9]/.test(password)) missing.push("a symbol");
  return missing.length ? `The password needs ${missing.join(", ")}.` : null;
}

/** Builds the sign-in form (showing `notice` when given); the session's listeners take over once login succeeds. */
export function signInView(notice = null) {
  const email = el("input", { type: "email", id: "acct-email", name: "email", autocomplete: "username", required: true, maxlength: 254, "data-testid": "email" });
  const password = el("input", { type: "password", id: "acct-password", name: "password", autocomplete: "current-password", required: true, minlength: 12, maxlength: 128, "data-testid": "password" });
  const totp = el("input", { type: "text", id: "acct-totp", name: "totp", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6, "data-testid": "totp" });
  const totpField = field("Two-factor code", totp, "The 6-digit code of your authenticator app.");
  totpField.hidden = true;
  const signIn = el("button", { type: "submit", class: "acct-primary", "data-testid": "sign-in" }, "Sign in");
  const create = el("button", { type: "button", "data-testid": "register" }, "Create account");
  const line = messageLine("signin-msg");

  const form = el(
    "form",
    { class: "acct-form", id: "acct-signin", novalidate: true },
    el("h2", {}, "Account"),
    field("Email", email),
    field("Password", password, `Password: ${PASSWORD_RULE}`),
    totpField,
    el("div", { class: "acct-row" }, signIn, create),
    line,
  );

  if (notice) say(line, notice, "info");

  async function signInWith(code) {
    try {
      await login(email.value, password.value, code);
    } catch (error) {
      if (error.code === "mfa_required") {
        totpField.hidden = false;
        totp.focus();
        say(line, "This account has two-factor on: enter the 6-digit code and sign in again.", "info");
        return;
      }
      throw error;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(line, "");
    const code = totpField.hidden ? undefined : totp.value.trim();
    if (code !== undefined && !/^\d{6}$/.test(code)) return say(line, "The two-factor code is 6 digits.", "error");
    busy(signIn, "Signing in…", line, () => signInWith(code));
  });

  create.addEventListener("click", () => {
    say(line, "");
    if (!email.value.includes("@")) return say(line, "Enter your email address.", "error");
    const problem = passwordProblem(password.value);
    if (problem) return say(line, problem, "error");
    busy(create, "Creating…", line, async () => {
      await register(email.value, password.value);
      say(line, "Account created; signing in…", "ok");
      await signInWith(undefined);
    });
  });

  return form;
}
