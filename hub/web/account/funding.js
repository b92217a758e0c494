// "Get ready to trade": the KYC status with a one-click sandbox
// verification (POST /users/kyc-documents, then GET /users/kyc-status
// until the sandbox decides), and the sandbox fiat deposit
// (POST /fiat/deposit, credited when the provider's webhook confirms; the
// new balance arrives on `balances`). Orders and deposits need VERIFIED;
// once verified the section is titled "Deposit" (account.js moves it next
// to the balances).

import { el } from "../dom.js";
import { api, currentEmail } from "./session.js";
import { checkDecimal, compareDecimal } from "./decimal.js";
import { field, messageLine, say, busy, describe } from "./ui.js";

const KYC_POLL_MS = 400;
const KYC_POLL_LIMIT_MS = 20_000;
/** Without a `balance` event this long after a deposit, the balances are read over REST. */
const DEPOSIT_FALLBACK_MS = 3_000;
const KYC_TEXT = {
  NONE: "not verified",
  PENDING: "being checked…",
  VERIFIED: "verified",
  REJECTED: "rejected: submit again",
};

/**
 * The section. `shared` is the sign-in's shared state (kyc, balances);
 * `reloadBalances()` re-reads them over REST. Returns {node, start, stop}.
 */
export function fundingSection(shared, reloadBalances) {
  const status = el("strong", { id: "kyc-status", "data-testid": "kyc-status" }, "…");
  const verify = el("button", { type: "button", class: "acct-primary", "data-testid": "kyc-verify" }, "Verify identity (sandbox)");
  const kycLine = messageLine("kyc-msg");

  const currency = el("select", { id: "deposit-currency", "data-testid": "deposit-currency" }, ["USD", "EUR", "GBP"].map((c) => el("option", { value: c }, c)));
  const amount = el("input", { type: "text", id: "deposit-amount", "data-testid": "deposit-amount", inputmode: "decimal", autocomplete: "off", value: "1000" });
  const deposit = el("button", { type: "submit", "data-testid": "deposit" }, "Deposit (sandbox)");
  const depositLine = messageLine("deposit-msg");
  const depositNote = el("span", { class: "muted acct-hint" });
  const form = el(
    "form",
    { class: "acct-form", id: "deposit-form", novalidate: true },
    el("div", { class: "acct-row acct-inline" }, field("Currency", currency), field("Amount", amount)),
    el("div", { class: "acct-row" }, deposit, depositNote),
    depositLine,
  );

  const heading = el("h2", { id: "funding-title" }, "Get ready to trade");
  const node = el(
    "section",
    { class: "acct-section", id: "acct-funding", "aria-label": "Identity and deposits" },
    heading,
    el("p", { class: "acct-kyc" }, "Identity: ", status, " ", verify),
    kycLine,
    form,
  );

  let stopped = false;
  let unwatch = null;
  const pending = new Set(); // stoppers of the deposits waiting for their credit

  function render() {
    const kyc = shared.kyc;
    heading.textContent = kyc === "VERIFIED" ? "Deposit" : "Get ready to trade";
    status.textContent = kyc ? KYC_TEXT[kyc] ?? kyc : "…";
    status.dataset.status = kyc ?? "";
    status.className = kyc === "VERIFIED" ? "up" : kyc === "REJECTED" ? "down" : "";
    verify.hidden = !(kyc === "NONE" || kyc === "REJECTED");
    deposit.disabled = kyc !== "VERIFIED";
    depositNote.textContent = kyc === "VERIFIED" ? "via Stripe (sandbox), 1–1,000,000" : "needs a verified identity";
  }

  async function readKyc() {
    const answer = await api("GET", "/users/kyc-status");
    if (!stopped) shared.set({ kyc: answer.kyc_status });
    return answer.kyc_status;
  }

  async function pollUntilDecided() {
    const deadline = Date.now() + KYC_POLL_LIMIT_MS;
    while (!stopped && Date.now() < deadline) {
      const kyc = await readKyc();
      if (kyc !== "PENDING") return kyc;
      await new Promise((ok) => setTimeout(ok, KYC_POLL_MS));
    }
    return shared.kyc;
  }

  verify.addEventListener("click", () => {
    say(kycLine, "");
    busy(verify, "Submitting…", kycLine, async () => {
      await api("POST", "/users/kyc-documents", { document_type: "passport", content_base64: sandboxDocument() });
      shared.set({ kyc: "PENDING" });
      say(kycLine, "Document sent; the sandbox decides in about a second…", "info");
      const kyc = await pollUntilDecided();
      if (kyc === "VERIFIED") say(kycLine, "Identity verified: you can deposit and trade.", "ok");
      else if (kyc === "REJECTED") say(kycLine, "The sandbox rejected the document.", "error");
      else say(kycLine, "Still being checked; reload the status later.", "info");
    }).then(render);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = checkDecimal(amount.value, 2, { label: "amount", min: "1" });
    if (checked.error) return say(depositLine, checked.error, "error");
    if (compareDecimal(checked.value, "1000000") > 0) return say(depositLine, "The amount must be at most 1000000.", "error");
    const asset = currency.value;
    const before = shared.balances.get(asset)?.total ?? "0";
    busy(deposit, "Depositing…", depositLine, async () => {
      await api("POST", "/fiat/deposit", {
        currency: asset,
        amount: checked.value,
        provider: "stripe",
        idempotency_key: crypto.randomUUID(),
      });
      say(depositLine, `Deposit of ${checked.value} ${asset} pending: the sandbox confirms it in a moment.`, "info");
      awaitCredit(asset, before);
    }).then(render);
  });

  /** Says "credited" when the asset's total grows; reads over REST if no event comes. Undone by stop(). */
  function awaitCredit(asset, before) {
    if (stopped) return;
    const credited = () => compareDecimal(shared.balances.get(asset)?.total ?? "0", before) > 0;
    const stopWatching = shared.watch(() => {
      if (!credited()) return;
      done();
      say(depositLine, `Deposit credited: ${asset} balance ${shared.balances.get(asset).total}.`, "ok");
    });
    const fallback = setTimeout(() => {
      if (!stopped && !credited()) reloadBalances().catch((error) => say(depositLine, describe(error), "error"));
    }, DEPOSIT_FALLBACK_MS);
    const done = () => {
      stopWatching();
      clearTimeout(fallback);
      pending.delete(done);
    };
    pending.add(done);
  }

  return {
    node,
    start() {
      unwatch = shared.watch(render);
      render();
      readKyc()
        .then((kyc) => (kyc === "PENDING" ? pollUntilDecided() : kyc))
        .catch((error) => say(kycLine, describe(error), "error"));
    },
    stop() {
      stopped = true;
      unwatch?.();
      for (const done of [...pending]) done();
    },
  };
}

/** A small generated "document" (the sandbox verifies any content not starting with REJECT). */
function sandboxDocument() {
  const text = `NA-X sandbox identity document\nholder: ${currentEmail()}\nissued: ${new Date().toISOString()}\n`;
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes));
}
