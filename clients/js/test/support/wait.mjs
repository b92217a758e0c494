// Bounded waits for the client tests: every wait has a deadline and a
// message that says what did not happen.

/**
 * Resolves with the first `event` of `client` for which `match` is true;
 * rejects after `ms` with `what` in the message.
 */
export function nextEvent(client, event, match = () => true, ms = 10_000, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${what} within ${ms} ms`));
    }, ms);
    const off = client.on(event, (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Polls `check` (sync or async) every `everyMs` until it returns a truthy value; rejects after `ms`. */
export async function waitUntil(check, ms, what, everyMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((ok) => setTimeout(ok, everyMs));
  }
}

/** Counts `event`s of `client` from now on; `count()` reads it, `off()` stops. */
export function counter(client, event, match = () => true) {
  let n = 0;
  const off = client.on(event, (payload) => { if (match(payload)) n++; });
  return { count: () => n, off };
}
