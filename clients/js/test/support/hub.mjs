// A real `nax-hub` process for the JavaScript tests (the client's under
// clients/js/test/ and the page's under hub/browser-tests/): its own
// port on 127.0.0.1 and its own data directory, killed by `stop()`,
// which then checks every line of its output (./hublog.mjs: JSON, and no
// secret the suite used) and fails when one is wrong.
// The binary is $NAX_HUB_BIN, else target/debug/nax-hub of this checkout
// (the hub's integration tests build it; scripts/test.sh runs them first).

import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { configSecrets, violations } from "./hublog.mjs";

export { forbid } from "./hublog.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

/**
 * Starts the hub with `toml` as its config file and waits until it answers
 * `GET /health` (and, unless `ready: false`, `GET /ready`: every sandbox
 * book warm). Throws, with the end of the hub's log, when it exits or does
 * not answer within `startMs`. `port`: a fixed port, e.g. that of a
 * stopped hub, to restart "the same" hub (a new epoch); by default the hub
 * binds port 0 and the port is read from its `serving:` log line, so no
 * other process can take it between a choice and the bind.
 */
export async function startHub({ toml = "", env = {}, ready = true, startMs = 60_000, logLevel = "info", port: fixedPort } = {}) {
  const bin = process.env.NAX_HUB_BIN ?? join(ROOT, "target/debug/nax-hub");
  if (!existsSync(bin)) {
    throw new Error(`no hub binary at ${bin}: run \`cargo build -p hub --bin nax-hub\` or set NAX_HUB_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), "nax-js-"));
  const config = join(dir, "test.toml");
  writeFileSync(config, toml);
  const logPath = join(dir, "hub.log");
  const log = openSync(logPath, "a");
  // NAX_HUB_BIN is this file's, not the hub's (the hub refuses NAX_ variables it does not know).
  // The `serving:` line (hub::process, info) is how the port is found.
  const childEnv = { ...withoutHubBin(process.env), NAX_LOG: `${logLevel},hub::process=info`, ...env };
  const child = spawn(bin, ["--config", config, "--data-dir", dir, "--bind", "127.0.0.1", "--port", String(fixedPort ?? 0)], {
    env: childEnv,
    stdio: ["ignore", log, log],
  });
  let exited = null;
  child.once("exit", (code, signal) => { exited = { code, signal }; });
  const kill = async () => {
    if (!exited) {
      const gone = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGKILL");
      await gone;
    }
  };
  const deadline = Date.now() + startMs;
  const failed = async (why) => {
    const tail = readFileSync(logPath, "utf8").slice(-2000);
    await kill();
    rmSync(dir, { recursive: true, force: true });
    return new Error(`${why}:\n${tail}`);
  };
  let port = fixedPort;
  while (port === undefined) {
    const serving = /serving: ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(readFileSync(logPath, "utf8"));
    if (serving) {
      port = Number(serving[1]);
    } else if (exited) {
      throw await failed(`nax-hub exited (${JSON.stringify(exited)}) before it was serving`);
    } else if (Date.now() > deadline) {
      throw await failed(`nax-hub logged no \`serving:\` line within ${startMs} ms`);
    } else {
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }
  const base = `http://127.0.0.1:${port}`;
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
