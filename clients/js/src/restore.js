// The parts of a restore after a reconnect that need no connection state:
// the `resume` map of the remembered channels, their subscribe (a channel
// the hub refuses is dropped and the rest sent again), and authentication
// through a tokenProvider (asked again, with backoff, when it fails or its
// token is refused).

import { CHANNELS_PER_FRAME } from "./channels.js";
import { NaxError } from "./errors.js";

/** Refused restore frames retried after dropping the channel the hub named. */
const RESTORE_ATTEMPTS = 5;
/** tokenProvider calls per (re)authentication before the client gives up; backoff between failures. */
const PROVIDER_ATTEMPTS = 4;
const PROVIDER_BACKOFF_MS = 500;

/**
 * The `resume` entries of channels that have a position (all but fresh ones
 * and heartbeat); sets each channel's mode to `resume` or `fresh`.
 * @param {import("./channels.js").ChannelState[]} sts
 * @returns {Record<string, {epoch: string, seq: number}>}
 */
export function resumeOf(sts) {
  const resume = {};
  for (const st of sts) {
    if (st.mode !== "fresh" && st.seq !== null && st.epoch !== null && st.info.kind !== "heartbeat") {
      resume[st.info.name] = { epoch: /** @type {string} */ (st.epoch), seq: st.seq };
      st.mode = "resume";
    } else {
      st.mode = "fresh";
    }
  }
  return resume;
}

/**
 * Subscribes remembered channels again (one frame per CHANNELS_PER_FRAME).
 * A frame refused with `unknown_channel` naming one of them: that channel
 * is dropped (`forget`) and the frame sent again without it; any other
 * refusal hands the frame's channels to `retry` (fresh, with backoff).
 * Resolves with what the hub recovered, or null when the connection went.
 * @param {import("./channels.js").ChannelState[]} sts
 * @param {{subscribe: (names: string[]) => Promise<any[]>, current: () => boolean, emit: (e: any) => void,
 *   forget: (st: any) => void, retry: (st: any) => void}} ctx
 */
export async function resubscribe(sts, ctx) {
  const recovered = [];
  const notRecovered = [];
  for (let i = 0; i < sts.length; i += CHANNELS_PER_FRAME) {
    let chunk = sts.slice(i, i + CHANNELS_PER_FRAME);
    for (let attempt = 1; chunk.length; attempt++) {
      try {
        const [answer] = await ctx.subscribe(chunk.map((st) => st.info.name));
        recovered.push(...(answer.recovered ?? []));
        notRecovered.push(...(answer.not_recovered ?? []));
        break;
      } catch (error) {
        if (!ctx.current() || error.code === "disconnected" || error.code === "closed") return null;
        ctx.emit(error);
        const refused = error.code === "unknown_channel" ? chunk.find((st) => String(error.message).endsWith(`: ${st.info.name}`)) : undefined;
        if (refused && attempt < RESTORE_ATTEMPTS) {
          ctx.forget(refused);
          chunk = chunk.filter((st) => st !== refused);
          continue;
        }
        for (const st of chunk) ctx.retry(st);
        break;
      }
    }
  }
  return { recovered, not_recovered: notRecovered };
}

/**
 * Authenticates with the provider's token: the provider is called with a
 * timeout, failures retried with backoff; a token the hub refuses as
 * `unauthorized` makes it ask again. After PROVIDER_ATTEMPTS failures it
 * rejects with `unauthorized`. `sent` is called once the auth frame is queued.
 * @param {{provider: () => (() => Promise<string>) | null, current: () => boolean, timeoutMs: number,
 *   auth: (token: string) => Promise<any>, sent: () => void}} ctx
 */
export async function authFromProvider(ctx) {
  let last = null;
  for (let attempt = 0; attempt < PROVIDER_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(PROVIDER_BACKOFF_MS * 2 ** (attempt - 1));
    const provider = ctx.provider();
    if (!ctx.current() || !provider) throw new NaxError("disconnected", "auth: the connection or the provider is gone");
    let token;
    try {
      token = await withTimeout(provider(), ctx.timeoutMs, "tokenProvider");
    } catch (error) {
      last = new NaxError("unauthorized", `tokenProvider failed: ${error?.message ?? error}`);
      continue;
    }
    if (!ctx.current() || ctx.provider() !== provider) throw new NaxError("disconnected", "auth: the connection or the provider is gone");
    const answer = ctx.auth(token);
    ctx.sent();
    try {
      return await answer;
    } catch (error) {
      if (error.code !== "unauthorized") throw error;
      last = error;
    }
  }
  throw new NaxError("unauthorized", `no token the hub accepts after ${PROVIDER_ATTEMPTS} tokenProvider attempts (last: ${last?.message})`);
}

/** @param {number} ms */
function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

/** `promise`, or a rejection after `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([Promise.resolve(promise), late]).finally(() => clearTimeout(timer));
}
