// "Enable two-factor": POST /auth/mfa/setup shows the TOTP secret and its
// otpauth:// URL as text (to type or paste into an authenticator app),
// then POST /auth/mfa/verify with a 6-digit code turns it on; from then on
// sign-in asks for a code.

import { el, fill } from "../dom.js";
import { api } from "./session.js";
import { field, messageLine, say, busy } from "./ui.js";

/** The section. Returns {node}. */
export function mfaSection() {
  const setup = el("button", { type: "button", "data-testid": "mfa-setup" }, "Enable two-factor");
  const details = el("div", { class: "acct-mfa", "data-testid": "mfa-details" });
  details.hidden = true;
  const line = messageLine("mfa-msg");
  const node = el(
    "section",
    { class: "acct-section", id: "acct-mfa", "aria-label": "Two-factor" },
    el("h2", {}, "Security"),
    el("p", { class: "muted" }, "Two-factor sign-in with an authenticator app (TOTP)."),
    setup,
    details,
    line,
  );

  setup.addEventListener("click", () => {
    say(line, "");
    busy(setup, "Setting up…", line, async () => {
      const { secret, otpauth_url } = await api("POST", "/auth/mfa/setup");
      showVerify(secret, otpauth_url);
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
        details.hidden = true;
        setup.hidden = true;
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

  return { node };
}
