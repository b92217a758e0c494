// What every browser test needs: a real hub (clients/js/test/support),
// Debian's Chromium driven by playwright-core (it cannot download a
// browser of its own here), and a screenshot per test under
// target/screenshots/.

import { mkdirSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export { startHub, forbid } from "../../clients/js/test/support/hub.mjs";
export { startProxy } from "../../clients/js/test/support/proxy.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SCREENSHOTS = join(ROOT, "target/screenshots");

/** 1280×800 (a laptop) and 390×844 (a phone). */
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Launches Chromium ($CHROMIUM, else /usr/bin/chromium). Fails loudly when
 * it cannot start: a browser test never skips.
 */
export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  try {
    return await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
  } catch (error) {
    throw new Error(`Chromium did not start from ${executablePath} (scripts/test.sh installs Debian's chromium): ${error.message}`);
  }
}

/**
 * A new page of `browser` at `viewport` that fails the test on any
 * console error, page error or CSP violation (collected in `problems`).
 * CSP violations come from a `securitypolicyviolation` listener added by an
 * init script (which the CSP does not govern) through an exposed binding.
 */
export async function openPage(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500 });
  const problems = [];
  await context.exposeBinding("reportCspViolation", (_source, text) => problems.push(`CSP violation: ${text}`));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => window.reportCspViolation(`${e.violatedDirective}: ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return { page, context, problems };
}

/**
 * An init script (`page.addInitScript(statusInjector)`) wrapping the page's
 * WebSocket so that a test can hand the client one more `status` message,
 * chained on the last real one (window.injectStatus(pairs)): the in-process
 * sandbox venue cannot be halted from outside.
 */
export function statusInjector() {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.hubSocket = this;
      this.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "status") window.lastStatus = message;
      });
    }
  };
  window.injectStatus = (pairs) => {
    const last = window.lastStatus;
    const next = { ...last, seq: last.seq + 1, prev_seq: last.seq, ts: last.ts + 1, pairs };
    window.hubSocket.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(next) }));
  };
}

/** Saves target/screenshots/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
