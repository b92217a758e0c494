// The market part of the trading page (hub/web/market/) in a real Chromium
// against a real hub: the ladder's first paint, the client's checksum
// counters, a dropped socket, the phone layout, switching pair and candle
// interval (also fast, with a late REST answer). Run: `node --test market.test.mjs`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, startProxy, launchBrowser, openPage, screenshot, statusInjector, DESKTOP, PHONE } from "./support.mjs";

let hub;
let proxy;
let browser;

before(async () => {
  hub = await startHub();
  proxy = await startProxy(hub.port);
  browser = await launchBrowser();
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await proxy?.close();
  await hub?.stop();
});

/** A page at `viewport` (openPage records console errors, page errors and CSP violations). */
const openMarket = (viewport = DESKTOP) => openPage(browser, viewport);

/** Waits until `fn(arg)` is truthy in the page, or fails with `message` and what the page shows. */
async function waitFor(page, message, fn, arg, timeout = 10_000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (error) {
    const seen = await page.evaluate(() => document.getElementById("conn")?.innerText).catch(() => "?");
    throw new Error(`${message} (within ${timeout} ms; #conn shows ${JSON.stringify(seen)}): ${error.message.split("\n")[0]}`);
  }
}

/** The page's own counters (#stat-*) and connection state (#conn-state). */
const readCorner = (page) =>
  page.evaluate(() => ({
    state: document.getElementById("conn-state")?.textContent,
    verified: Number(document.getElementById("stat-verified").textContent),
    mismatches: Number(document.getElementById("stat-mismatches").textContent),
    resyncs: Number(document.getElementById("stat-resyncs").textContent),
    reconnects: Number(document.getElementById("stat-reconnects").textContent),
  }));

/** The ladder's visible prices, top to bottom, per side. */
const readLadder = (page) =>
  page.evaluate(() => {
    const prices = (side) => [...document.querySelectorAll(`#book-${side} .level:not([hidden]) .px`)].map((n) => n.textContent);
    return { asks: prices("asks"), bids: prices("bids"), spread: document.getElementById("book-spread").textContent };
  });

/** Exact comparison of two decimal strings of the same scale. */
const units = (text) => BigInt(text.replace(".", ""));

async function noProblems(problems) {
  assert.deepEqual(problems, [], "console errors, page errors or CSP violations");
}

test("the page loads under its CSP and the ladder shows levels within 2 s", { timeout: 30_000 }, async () => {
  const answer = await fetch(hub.base + "/");
  const csp = answer.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/, "CSP header on /");
  assert.match(csp, /script-src 'self'/);
  // The same policy on the page's own files and on the client library's.
  for (const file of ["/assets/app.js", "/assets/market/market.css", "/client/index.js"]) {
    const served = await fetch(hub.base + file);
    assert.equal(served.status, 200, `${file} served`);
    assert.equal(served.headers.get("content-security-policy"), csp, `CSP header on ${file}`);
    await served.arrayBuffer();
  }

  const { page, context, problems } = await openMarket();
  try {
    const started = Date.now();
    await page.goto(hub.base + "/");
    await waitFor(page, "ladder levels", () => Number(document.getElementById("book")?.dataset.levels) > 0, null, Math.max(1, 2000 - (Date.now() - started)));
    const ladder = await readLadder(page);
    assert.ok(ladder.asks.length > 0 && ladder.bids.length > 0, `both sides shown: ${JSON.stringify(ladder)}`);
    for (const price of [...ladder.asks, ...ladder.bids]) assert.match(price, /^\d+\.\d{2}$/, "BTC-USD prices at scale 2, as sent");
    // Asks top to bottom: worst first, best just above the spread; bids best first.
    const descending = (list) => list.every((p, i) => i === 0 || units(list[i - 1]) > units(p));
    assert.ok(descending(ladder.asks), `asks descend towards the spread: ${ladder.asks}`);
    assert.ok(descending(ladder.bids), `bids descend from the spread: ${ladder.bids}`);
    assert.ok(units(ladder.asks.at(-1)) > units(ladder.bids[0]), "best ask above best bid");
    // Then the live channel moves it (the first paint may be the REST answer, loaded once).
    const painted = await page.evaluate(() => document.querySelector("#book .ladder").innerText);
    await waitFor(page, "the ladder updated live", (was) => document.querySelector("#book .ladder").innerText !== was, painted);
    await waitFor(page, "connection open", () => document.getElementById("conn-state")?.textContent === "open");
    await waitFor(page, "chart drawn", () => Number(document.getElementById("chart").dataset.drawn) > 0);
    await screenshot(page, "market-1-desktop");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("after 20 s the page's counters show checksums verified and no mismatch, over compressed frames", { timeout: 45_000 }, async () => {
  const { page, context, problems } = await openMarket();
  try {
    // Chromium offers permessage-deflate; the hub's answer is read off the
    // handshake (DevTools protocol), so the 20 s below run compressed.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const extensions = [];
    cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
      const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
      extensions.push(headers["sec-websocket-extensions"]);
    });
    await page.goto(hub.base + "/");
    await waitFor(page, "connection open", () => document.getElementById("conn-state")?.textContent === "open");
    const samples = [];
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      samples.push(await readCorner(page));
      await page.waitForTimeout(1000); // a sample a second over the 20 s window
    }
    const last = await readCorner(page);
    await screenshot(page, "market-2-counters");
    assert.deepEqual(extensions, ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"], "the page's socket compresses");
    assert.ok(last.verified > 0, `checksums verified: ${JSON.stringify(last)}`);
    assert.ok(samples.every((s) => s.mismatches === 0) && last.mismatches === 0, `no mismatch at any second: ${JSON.stringify(samples.map((s) => s.mismatches))}`);
    assert.equal(last.state, "open");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("the hub drops the socket and the page resumes", { timeout: 45_000 }, async () => {
  const { page, context, problems } = await openMarket();
  try {
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    await waitFor(page, "connection open", () => document.getElementById("conn-state")?.textContent === "open");
    await waitFor(page, "first checksums verified", () => Number(document.getElementById("stat-verified").textContent) > 0);
    assert.ok(proxy.connections > 0, "the page's connections go through the proxy");
    // Record every state the corner shows from here on.
    await page.evaluate(() => {
      window.connStates = [];
      const node = document.getElementById("conn-state");
      new MutationObserver(() => window.connStates.push(node.textContent)).observe(node, { childList: true, characterData: true, subtree: true });
    });
    const before = await readCorner(page);

    proxy.dropAll();
    await waitFor(page, "a reconnect counted", () => Number(document.getElementById("stat-reconnects").textContent) >= 1, null, 15_000);
    await waitFor(page, "connection open again", () => document.getElementById("conn-state")?.textContent === "open", null, 15_000);
    const reopened = await readCorner(page);
    await waitFor(page, "verified keeps growing", (n) => Number(document.getElementById("stat-verified").textContent) > n + 5, reopened.verified, 10_000);
    const after = await readCorner(page);
    const states = await page.evaluate(() => window.connStates);
    await screenshot(page, "market-3-resumed");

    assert.ok(states.some((s) => s !== "open"), `the corner showed the outage: ${states}`);
    assert.equal(states.at(-1), "open");
    assert.ok(after.verified > before.verified, `verified ${before.verified} -> ${after.verified}`);
    assert.equal(after.mismatches, 0, "no mismatch after the resume");
    assert.ok((await readLadder(page)).bids.length > 0, "the ladder still shows levels");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("phone layout: no horizontal scroll, ladder and chart visible", { timeout: 30_000 }, async () => {
  const { page, context, problems } = await openMarket(PHONE);
  try {
    await page.goto(hub.base + "/");
    await waitFor(page, "ladder levels", () => Number(document.getElementById("book")?.dataset.levels) > 0);
    await waitFor(page, "chart drawn", () => Number(document.getElementById("chart").dataset.drawn) > 0);
    await screenshot(page, "market-4-phone");
    const layout = await page.evaluate(() => {
      const box = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
      const bestBid = document.querySelector("#book-bids .level:not([hidden])").getBoundingClientRect().toJSON();
      return { scrollWidth: document.documentElement.scrollWidth, innerWidth, book: box("book"), chart: box("chart"), bestBid, canvas: document.querySelector("#chart canvas").getBoundingClientRect().toJSON() };
    });
    assert.ok(layout.scrollWidth <= layout.innerWidth, `no horizontal scroll: ${layout.scrollWidth} > ${layout.innerWidth}`);
    for (const name of ["book", "chart"]) {
      const b = layout[name];
      assert.ok(b.width > 300 && b.height > 200 && b.left >= 0 && b.right <= layout.innerWidth, `${name} on screen: ${JSON.stringify(b)}`);
    }
    assert.ok(layout.canvas.height > 150, `chart canvas has room: ${JSON.stringify(layout.canvas)}`);
    assert.ok(layout.bestBid.top >= layout.book.top && layout.bestBid.bottom <= layout.book.bottom, "the best bid row is inside the ladder");
    assert.ok(await page.locator("#book").isVisible());
    assert.ok(await page.locator("#chart canvas").isVisible());
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("switching pair and candle interval updates the ladder and the chart", { timeout: 30_000 }, async () => {
  const { page, context, problems } = await openMarket();
  try {
    await page.goto(hub.base + "/");
    await waitFor(page, "connection open", () => document.getElementById("conn-state")?.textContent === "open");
    await waitFor(page, "BTC-USD ladder", () => Number(document.getElementById("book")?.dataset.levels) > 0);
    const reference = await (await fetch(hub.base + "/markets/ETH-BTC/ticker")).json();

    await page.selectOption("#pair", "ETH-BTC");
    // ETH-BTC: price scale 5, around 0.05 BTC (BTC-USD is around 64000.00).
    await waitFor(page, "ETH-BTC prices in the ladder", () => {
      const prices = [...document.querySelectorAll("#book .level:not([hidden]) .px")].map((n) => n.textContent);
      return prices.length > 0 && prices.every((p) => /^0\.\d{5}$/.test(p));
    });
    await waitFor(page, "ETH-BTC ticker", () => document.getElementById("ticker").dataset.pair === "ETH-BTC");
    assert.ok(!(await page.title()).includes("BTC-USD"), `the title left BTC-USD: ${await page.title()}`);
    await waitFor(page, "the title's ETH-BTC price", () => /^0\.\d{5} ETH-BTC · NA-X Stream$/.test(document.title));

    await page.click('#chart button[data-interval="5m"]');
    await waitFor(page, "5m candles drawn", () => {
      const chart = document.getElementById("chart");
      return chart.dataset.interval === "5m" && Number(chart.dataset.drawn) > 0 && document.getElementById("chart-title").textContent === "ETH-BTC · 5m";
    });
    // The chart may have drawn the REST answer before the live channels'
    // snapshots arrived: wait for the client to hold them, then check it
    // holds nothing else.
    await waitFor(page, "the client's ETH-BTC book and 5m candles", () => {
      const client = window.nax.client;
      return client.book("depth20.ETH-BTC") !== undefined && client.candles("candles5m.ETH-BTC").length > 0;
    });
    const held = await page.evaluate(() => {
      const client = window.nax.client;
      return {
        newBook: client.book("depth20.ETH-BTC") !== undefined,
        oldBook: client.book("depth20.BTC-USD") !== undefined,
        newCandles: client.candles("candles5m.ETH-BTC").length,
        oldCandles: client.candles("candles1m.ETH-BTC").length + client.candles("candles1m.BTC-USD").length,
      };
    });
    assert.deepEqual({ ...held, newCandles: held.newCandles > 0 }, { newBook: true, oldBook: false, newCandles: true, oldCandles: 0 }, "the client holds the new channels only");
    const labels = await page.$$eval("canvas", (list) => list.map((c) => `${c.getAttribute("role")}: ${c.getAttribute("aria-label")}`));
    assert.equal(labels.length, 2);
    assert.match(labels[0], /^img: Candlestick chart of ETH-BTC, 5m candles/, "the chart canvas says what it shows");
    assert.match(labels[1], /^img: Depth chart of ETH-BTC/, "the depth canvas says what it shows");
    const pressed = await page.$$eval("#chart button[data-interval]", (list) => list.filter((b) => b.getAttribute("aria-pressed") === "true").map((b) => b.dataset.interval));
    assert.deepEqual(pressed, ["5m"], "only the 5m button is active");

    // Nothing of BTC-USD comes back after the switch (its channels are gone).
    await page.waitForTimeout(1000);
    const ladder = await readLadder(page);
    const bid = Number(reference.bid);
    for (const price of [...ladder.asks, ...ladder.bids]) {
      assert.match(price, /^0\.\d{5}$/, "ETH-BTC scale");
      assert.ok(Math.abs(Number(price) - bid) < bid * 0.05, `${price} within 5% of the REST bid ${reference.bid}`);
    }
    await screenshot(page, "market-5-eth-btc-5m");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("a halted or stale pair is flagged in the market status and the ladder", { timeout: 30_000 }, async () => {
  const { page, context, problems } = await openMarket();
  try {
    await page.addInitScript(statusInjector);
    await page.goto(hub.base + "/");
    await waitFor(page, "first status message", () => window.lastStatus !== undefined);
    await waitFor(page, "online shown", () => document.getElementById("market-status").dataset.state === "online");
    const read = () =>
      page.evaluate(() => ({
        state: document.getElementById("market-status").dataset.state,
        text: document.getElementById("market-status").innerText,
        book: document.getElementById("book").dataset.marketState,
        ladderOpacity: getComputedStyle(document.querySelector("#book .ladder")).opacity,
      }));
    const others = (pairs, state, reason) => pairs.map((p) => (p.pair === "BTC-USD" ? { ...p, state, reason } : p));
    const table = await page.evaluate(() => window.lastStatus.pairs);

    await page.evaluate((pairs) => window.injectStatus(pairs), others(table, "halted", "circuit breaker"));
    await waitFor(page, "halted shown", () => document.getElementById("market-status").dataset.state === "halted");
    const halted = await read();
    assert.match(halted.text, /halted/i);
    assert.match(halted.text, /circuit breaker/);
    assert.equal(halted.book, "halted");
    assert.ok(await page.locator("#market-state").isVisible());
    await screenshot(page, "market-6-halted");

    await page.evaluate((pairs) => window.injectStatus(pairs), others(table, "stale", "no upstream data for 10000 ms"));
    await waitFor(page, "stale shown", () => document.getElementById("market-status").dataset.state === "stale");
    const stale = await read();
    assert.match(stale.text, /no upstream data/);
    assert.ok(Number(stale.ladderOpacity) < 1, `a stale book is dimmed: ${stale.ladderOpacity}`);

    // Another pair's state does not touch the selected one's.
    await page.evaluate((pairs) => window.injectStatus(pairs.map((p) => (p.pair === "ETH-USD" ? { ...p, state: "halted", reason: "x" } : p))), table);
    await waitFor(page, "online again", () => document.getElementById("market-status").dataset.state === "online");
    assert.equal((await read()).ladderOpacity, "1");
    const corner = await readCorner(page);
    assert.equal(corner.resyncs, 0, "the injected messages chained (no resync)");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});

test("switching pairs fast: a late REST answer of the pair left behind shows nothing", { timeout: 30_000 }, async () => {
  const { page, context, problems } = await openMarket();
  try {
    // ETH-USD's REST answers (book, ticker, trades, candles) come 2 s late.
    const late = [];
    await page.route(/\/markets\/ETH-USD\//, async (route) => {
      const answered = new Promise((done) => setTimeout(done, 2000)).then(() => route.continue());
      late.push(answered);
      await answered;
    });
    await page.goto(hub.base + "/");
    await waitFor(page, "BTC-USD ladder", () => Number(document.getElementById("book")?.dataset.levels) > 0);
    await page.selectOption("#pair", "ETH-USD");
    await page.selectOption("#pair", "ETH-BTC");
    // The switch empties the panels on the next animation frame (painting
    // is frame-throttled): wait two, so what ETH-USD's live snapshot
    // painted before the switch is gone before recording starts.
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    // From here on (ETH-USD's live events are dropped from the switch on),
    // only ETH-USD's held REST answers could show its prices.
    await page.evaluate(() => {
      window.shown = new Set();
      const record = () => {
        for (const n of document.querySelectorAll("#book .level:not([hidden]) .px, #tape .trade:not(.head) span:first-child, #ticker [data-field=last]")) window.shown.add(n.textContent);
      };
      record();
      new MutationObserver(record).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
    await waitFor(page, "ETH-BTC ladder", () => [...document.querySelectorAll("#book .level:not([hidden]) .px")].some((n) => /^0\.\d{5}$/.test(n.textContent)));
    assert.ok(late.length >= 4, `ETH-USD's four REST reads were held (${late.length})`);
    await Promise.all(late);
    // Two frames after the late answers: anything they painted would be on screen by now.
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    const shown = await page.evaluate(() => [...window.shown].filter((t) => t !== "–"));
    assert.ok(shown.length > 0, "prices were shown");
    assert.deepEqual(shown.filter((t) => !/^0\.\d{5}$/.test(t)), [], "only ETH-BTC prices (scale 5) were shown after the switch");
    assert.equal(await page.getAttribute("#ticker", "data-pair"), "ETH-BTC");
    assert.match(await page.textContent("#chart-title"), /^ETH-BTC · /);
    await screenshot(page, "market-7-fast-switch");
    await noProblems(problems);
  } finally {
    await context.close();
  }
});
