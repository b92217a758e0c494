// A real hub behind a cutting TCP proxy for a whole test file: started in
// `before`, stopped in `after`.

import { before, after } from "node:test";
import { startHub } from "./hub.mjs";
import { startProxy } from "./proxy.mjs";

/** Registers the hooks; the returned object's `hub` and `proxy` are set once `before` ran. */
export function hubBehindProxy() {
  const env = { hub: null, proxy: null };
  before(async () => {
    env.hub = await startHub();
    env.proxy = await startProxy(env.hub.port);
  });
  after(async () => {
    await env.proxy?.close();
    await env.hub?.stop();
  });
  return env;
}
