// How long a new visitor waits for a live market: navigation to the page
// until the ladder shows levels, next to the floor of the same shape on
// this machine (same origin, same round trips: a page, GET /markets, the
// WebSocket, a subscribe, the first `depth`, with nothing loaded or drawn).
// Not a test (not run by scripts/test.sh): a measurement for
// docs/BENCHMARKS.md. Run: `node first-paint.bench.mjs [runs]` (a debug
// hub by default; NAX_HUB_BIN=target/production/nax-hub for the optimized one).

import { startHub, launchBrowser, openPage, DESKTOP } from "./support.mjs";

const RUNS = Number(process.argv[2] ?? 9);
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

/** Milliseconds from navigation to the ladder showing levels. */
async function page(browser, base) {
  const { page, context } = await openPage(browser, DESKTOP);
  const started = Date.now();
  await page.goto(base + "/");
  await page.waitForFunction(() => Number(document.getElementById("book")?.dataset.levels) > 0, null, { polling: 5, timeout: 20_000 });
  const took = Date.now() - started;
  await context.close();
  return took;
}

/** Milliseconds for the same round trips without the page. */
async function floor(browser, base) {
  const { page, context } = await openPage(browser, DESKTOP);
  const started = Date.now();
  await page.goto(base + "/health");
  await page.evaluate(async () => {
    await (await fetch("/markets")).json();
    await new Promise((done) => {
      const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws");
      ws.onopen = () => ws.send(JSON.stringify({ op: "subscribe", id: 1, channels: ["depth20.BTC-USD"] }));
      ws.onmessage = (m) => {
        if (JSON.parse(m.data).type === "depth") {
          ws.close();
          done();
        }
      };
    });
  });
  const took = Date.now() - started;
  await context.close();
  return took;
}

const hub = await startHub();
const browser = await launchBrowser();
try {
  const pages = [];
  const floors = [];
  for (let i = 0; i < RUNS; i++) {
    pages.push(await page(browser, hub.base));
    floors.push(await floor(browser, hub.base));
  }
  const result = { runs: RUNS, page_ms: pages, floor_ms: floors, page_median: median(pages), floor_median: median(floors) };
  result.ratio = Number((result.page_median / result.floor_median).toFixed(2));
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
  await hub.stop();
}
