// A real `nax-hub` process for the JavaScript tests (the client's under
// clients/js/test/ and the page's under hub/browser-tests/): its own
// port on 127.0.0.1 and its own data directory, killed by `stop()`,
// which then checks every line of its output (./hublog.mjs: JSON, and no
// secret the suite used) and fails when one is wrong.
// The binary is $NAX_HUB_BIN, else target/debug/nax-hub of this checkout
// (the hub's integration tests build it; scripts/test.sh runs them first).

import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { configSecrets, violations } from "./hublog.mjs";

export { forbid } from "./hublog.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

/** A free TCP port on 127.0.0.1 (the OS's choice, released at once). */
export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/**
 * Starts the hub with `toml` as its config file and waits until it answers
 * `GET /health` (and, unless `ready: false`, `GET /ready`: every sandbox
 * book warm). Throws, with the end of the hub's log, when it exits or does
 * not answer within `startMs`. `port`: a fixed port (default: a free one),
 * e.g. that of a stopped hub, to restart "the same" hub (a new epoch).
 */
export async function startHub({ toml = "", env = {}, ready = true, startMs = 60_000, logLevel = "info", port: fixedPort } = {}) {
  const bin = process.env.NAX_HUB_BIN ?? join(ROOT, "target/debug/nax-hub");
  if (!existsSync(bin)) {
    throw new Error(`no hub binary at ${bin}: run \`cargo build -p hub --bin nax-hub\` or set NAX_HUB_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), "nax-js-"));
  const config = join(dir, "test.toml");
  writeFileSync(config, toml);
  const port = fixedPort ?? (await freePort());
  const logPath = join(dir, "hub.log");
  const log = openSync(logPath, "a");
  // NAX_HUB_BIN is this file's, not the hub's (the hub refuses NAX_ variables it does not know).
  const childEnv = { ...withoutHubBin(process.env), NAX_LOG: logLevel, ...env };
  const child = spawn(bin, ["--config", config, "--data-dir", dir, "--bind", "127.0.0.1", "--port", String(port)], {
    env: childEnv,
    stdio: ["ignore", log, log],
  });
  let exited = null;
  child.once("exit", (code, signal) => { exited = { code, signal }; });
  const base = `http://127.0.0.1:${port}`;
  const kill = async () => {
    if (!exited) {
      const gone = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGKILL");
      await gone;
    }
  };
  const hub = {
    port,
    base,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    dir,
    logPath,
    child,
    /**
     * Kills the process (SIGKILL), checks its log (./hublog.mjs) and
     * removes its data directory; throws, keeping the directory, when a
     * line of the log is not JSON or holds a secret.
     */
    async stop() {
      await kill();
      const problems = violations(readFileSync(logPath, "utf8"), configSecrets(toml, childEnv, dir));
      if (problems.length > 0) {
        throw new Error(`the log of the hub on port ${port} (${logPath}) fails its check (clients/js/test/support/hublog.mjs):\n  ${problems.join("\n  ")}`);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    /** Kills the process and removes its data directory, unchecked (a start that failed). */
    async discard() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + startMs;
  const paths = ready ? ["/health", "/ready"] : ["/health"];
  for (const path of paths) {
    for (;;) {
      if (exited) {
        const tail = readFileSync(logPath, "utf8").slice(-2000);
        await hub.discard();
        throw new Error(`nax-hub exited (${JSON.stringify(exited)}) before ${path} answered 200:\n${tail}`);
      }
      try {
        const answer = await fetch(base + path, { signal: AbortSignal.timeout(2000) });
        if (answer.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await hub.discard();
        throw new Error(`nax-hub did not answer ${path} with 200 within ${startMs} ms`);
      }
      await new Promise((ok) => setTimeout(ok, 50));
    }
  }
  return hub;
}

/** `env` without NAX_HUB_BIN. */
function withoutHubBin(env) {
  const { NAX_HUB_BIN: _bin, ...rest } = env;
  return rest;
}
