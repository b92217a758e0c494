// Two-factor (TOTP) state and "Enable two-factor": POST /auth/mfa/setup
// shows the secret and its otpauth:// URL as text (to type or paste into an
// authenticator app), then POST /auth/mfa/verify with a 6-digit code turns
// it on; from then on sign-in asks for a code. The setting is read from
// GET /users/profile (`mfa_enabled`) when the section opens, and is known on
// at once when this sign-in used a code or turned it on.

import { el, fill } from "../dom.js";
import { api, mfaKnownOn, noteMfaOn } from "./session.js";
import { field, messageLine, say, busy } from "./ui.js";

const ON_TEXT = "Two-factor is on: sign-in asks for a code from your authenticator app.";

/** The section. Returns {node}. */
export function mfaSection() {
  const state = el("p", { class: "muted", "data-testid": "mfa-state" });
  const setup = el("button", { type: "button", "data-testid": "mfa-setup" }, "Enable two-factor");
  const details = el("div", { class: "acct-mfa", "data-testid": "mfa-details" });
  details.hidden = true;
  const line = messageLine("mfa-msg");
  const node = el("section", { class: "acct-section", id: "acct-mfa", "aria-label": "Two-factor" }, el("h2", {}, "Security"), state, setup, details, line);

  /** Shows the setting as known: on (no setup offered) or not known to be on. */
  function showState() {
    const on = mfaKnownOn();
    state.dataset.mfa = on ? "on" : "off";
    state.className = on ? "up" : "muted";
    state.textContent = on ? ON_TEXT : "Two-factor sign-in with an authenticator app (TOTP).";
    setup.hidden = on || !details.hidden;
    if (on) details.hidden = true;
  }

  setup.addEventListener("click", () => {
    say(line, "");
    busy(setup, "Setting up…", line, async () => {
      try {
        const { secret, otpauth_url } = await api("POST", "/auth/mfa/setup");
        showVerify(secret, otpauth_url);
      } catch (error) {
        if (error.code !== "mfa_already_enabled") throw error;
        noteMfaOn();
        showState();
      }
    });
  });

  function showVerify(secret, url) {
    const code = el("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6, "data-testid": "mfa-code" });
    const verify = el("button", { type: "submit", class: "acct-primary", "data-testid": "mfa-verify" }, "Turn on");
    const form = el("form", { class: "acct-form", novalidate: true }, field("Code from the app", code), verify);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!/^\d{6}$/.test(code.value.trim())) return say(line, "The code is 6 digits.", "error");
      busy(verify, "Checking…", line, async () => {
        await api("POST", "/auth/mfa/verify", { code: code.value.trim() });
        noteMfaOn();
        showState();
        say(line, "Two-factor is on: sign-in will ask for a code.", "ok");
      });
    });
    fill(
      details,
      el("p", {}, "Add this key to your authenticator app, then enter the code it shows."),
      el("p", {}, "Secret: ", el("code", { class: "acct-secret", "data-testid": "mfa-secret" }, secret)),
      el("p", {}, "Or this URL: ", el("code", { class: "acct-secret", "data-testid": "mfa-url" }, url)),
      form,
    );
    details.hidden = false;
    setup.hidden = true;
  }

  showState();
  api("GET", "/users/profile")
    .then((profile) => {
      if (profile?.mfa_enabled) {
        noteMfaOn();
        showState();
      }
    })
    .catch(() => {}); // offered as off; setup's 409 `mfa_already_enabled` corrects it
  return { node };
}
