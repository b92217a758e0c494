// Types of @nax/stream-client (src/index.js). The protocol these calls
// speak is docs/PROTOCOL.md of the NA-X Stream repository.

/** A price level: [price, quantity], decimal strings at the pair's scale. */
export type Level = [price: string, qty: string];

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface ClientOptions {
  /** `ws://host:port/ws` (or `wss://`). In a page served by the hub: `new URL("/ws", location.href)` with the scheme swapped. */
  url: string;
  /** A WebSocket constructor; default `globalThis.WebSocket`. Tests pass a wrapper to inject faults. The client uses only `new (url)`, `onopen`, `onmessage` (`event.data`, a string), `onclose`, `onerror`, `send(string)` and `close(code, reason)`. */
  WebSocket?: typeof WebSocket;
  /** First reconnect delay ceiling in ms (default 250); doubles per failed attempt up to `maxBackoffMs` (default 10,000). Each delay is drawn uniformly from [0, ceiling] ("full jitter"). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Sends a `ping` op this often while open (default 15,000 ms); no answer within `pongTimeoutMs` (default 10,000) closes the socket and reconnects. 0 disables. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** How long an op (subscribe, auth, order ops) waits for its answer before its promise rejects with code `timeout` (default 10,000 ms). An op still waiting in the client's outbox (frame pacing) at its timeout is taken out: it is never sent after its promise rejected. */
  requestTimeoutMs?: number;
  /** How long `cancelAll` waits for its answer (default 60,000 ms: the hub answers once every cancel ran). */
  cancelAllTimeoutMs?: number;
  /** How long one `tokenProvider` call may take before it counts as failed (default 10,000 ms). */
  tokenProviderTimeoutMs?: number;
  /** A book, depth, ticker, candles, status or heartbeat channel whose first message has not come this long after the hub answered its subscribe is subscribed again (default 10,000 ms; 0 disables). */
  watchdogMs?: number;
  /** Random source in [0, 1) for the jitter (default Math.random); tests make it deterministic. */
  random?: () => number;
}

/** The error every rejected promise and every `error` event carries. `code` is the hub's error code (docs/PROTOCOL.md "Error codes"), or from the client itself: `disconnected` (the connection dropped before the answer, or is not open for an order op), `timeout` (no answer in time; like `disconnected`, an order op that timed out may have been carried out: place it again with the same `client_order_id`), `closed` (after `close()`), `queue_full` (1,000 frames already wait in the client's outbox), `unknown_channel` (a name that is not a channel name, refused before sending), `bad_message` (the hub sent a frame that is not JSON; `error` event only), `unauthorized` also when the `tokenProvider` failed or its tokens were refused too often (`error` event). */
export class NaxError extends Error {
  constructor(code: string, message?: string, id?: number | null);
  code: string;
  /** The op id it answers (null for unsolicited errors). */
  id: number | null;
}

/** One side-sorted L2 book kept from `snapshot` + `update` (book.PAIR) or `depth` (depthN.PAIR). */
export class OrderBook {
  /** `levelsChecked`: levels per side the checksum covers (at most 10). */
  constructor(levelsChecked?: number);
  /** Best first: bids highest first, asks lowest first. The book's own arrays: do not modify (copy with `top`). */
  readonly bids: readonly Level[];
  readonly asks: readonly Level[];
  readonly epoch: string | null;
  readonly seq: number;
  /** False until the first state message, and from a failed checksum or a gap until the fresh state arrives (the client then repairs the channel). A book handed to a listener was synced then; one held since may have become unsynced. */
  readonly synced: boolean;
  /** Replaces the whole book. */
  replace(bids: Level[], asks: Level[]): void;
  /** Applies absolute levels (a zero quantity deletes the level). */
  apply(bids: Level[], asks: Level[]): void;
  /** The protocol's CRC-32 over the top `levelsChecked` (default 10) levels each side. */
  checksum(): number;
  /** The top `n` levels of each side, best first. */
  top(n: number): { bids: Level[]; asks: Level[] };
}

/** Exact order of two decimal strings of the same scale (integer-part length, then the digits): negative, 0 or positive. */
export function comparePrices(a: string, b: string): number;

/** What a channel name means; null when it is not one of the protocol's names. */
export interface ChannelInfo {
  name: string;
  kind: "book" | "depth" | "trades" | "ticker" | "candles" | "heartbeat" | "status" | "orders" | "balances";
  pair: string | null;
  /** N of depthN. */
  depth: number | null;
  /** I of candlesI. */
  interval: string | null;
  /** orders and balances. */
  private: boolean;
}
export function parseChannel(name: string): ChannelInfo | null;

/** CRC-32 (IEEE) of a string's bytes (ASCII in practice). */
export function crc32(text: string): number;
/** The protocol's book checksum of the given top levels (docs/PROTOCOL.md "Books and the checksum"). */
export function bookChecksum(bids: Level[], asks: Level[], levels?: number): number;

export interface Candle {
  start: number; open: string; high: string; low: string; close: string;
  volume: string; quote_volume: string; trades: number; closed: boolean;
}
export interface Trade { id: string; price: string; qty: string; side: "buy" | "sell"; venue_ts: number; }
export interface Ticker {
  pair: string;
  bid: string | null; bid_qty: string | null; ask: string | null; ask_qty: string | null; last: string | null;
  open_24h: string | null; high_24h: string | null; low_24h: string | null;
  volume_24h: string; quote_volume_24h: string; change_24h: string | null; change_24h_pct: string | null;
}
export interface PairStatus { pair: string; state: "online" | "stale" | "halted" | "resyncing"; reason: string | null; since: number; }
export interface Order {
  order_id: string; client_order_id: string; pair: string; side: "buy" | "sell"; type: "limit" | "market";
  price: string | null; qty: string; filled_qty: string; avg_fill_price: string | null;
  status: "open" | "partially_filled" | "filled" | "cancelled" | "rejected";
  time_in_force: "GTC" | "IOC" | "FOK"; post_only: boolean; reason: string | null; created_at: string; updated_at: string;
}
export interface Balance { asset: string; available: string; locked: string; total: string; }
export interface OrderRequest {
  client_order_id: string; pair: string; side: "buy" | "sell"; type: "limit" | "market";
  qty: string; price?: string; time_in_force?: "GTC" | "IOC" | "FOK"; post_only?: boolean;
}

/** Counters of what the client checked and repaired since it was created. */
export interface ClientStats {
  /** Book/depth messages whose checksum the client recomputed and found equal. */
  checksumsVerified: number;
  checksumMismatches: number;
  /** Messages whose prev_seq was not the channel's last seq. */
  gaps: number;
  /** Channels subscribed again after a mismatch, a gap, or by the watchdog. */
  resyncs: number;
  /** Messages dropped as left over from before a (re)subscribe (a channel waiting for its fresh first message). */
  staleDropped: number;
  /** Channels the watchdog subscribed again (no first message within `watchdogMs`). */
  watchdogResyncs: number;
  /** Connections opened after the first. */
  reconnects: number;
  /** Channels the hub listed in `recovered` / `not_recovered` on a resume. */
  recovered: number;
  notRecovered: number;
  messages: number;
}

export interface ClientEvents {
  /** Connection state changes. `attempt` counts failed attempts since the last open. */
  state: { state: ConnectionState; attempt: number };
  /** book.PAIR (after every snapshot/update, checksum verified) and depthN.PAIR. */
  book: { channel: string; pair: string; book: OrderBook; reason: string | null };
  trades: { channel: string; pair: string; trades: Trade[] };
  ticker: { channel: string; pair: string; ticker: Ticker };
  /** The channel's candles oldest first (at most 300 plus what arrived since, at most 1,000 kept), after a state message or an update; `candle` is the one that changed (absent after a state message). After a `closed: true` candle the client appends the flat open candle that follows it (docs/PROTOCOL.md "Candles": no holes). */
  candles: { channel: string; pair: string; interval: string; candles: readonly Candle[]; candle?: Candle };
  status: { pairs: PairStatus[] };
  order: { order: Order };
  balance: { balance: Balance };
  /** A dead-man's switch fired (`cancelled` on `orders`). */
  cancelled: { trigger: string; order_ids: string[] };
  /** A channel is being subscribed again: `reason` is `checksum`, `gap`, or `watchdog` (no first message within `watchdogMs`). A channel that breaks again within 10 s is subscribed again after a backoff (0.5 s doubling to 10 s); a refused or unanswered resync is retried the same way. */
  resync: { channel: string; reason: "checksum" | "gap" | "watchdog" };
  /** Result of a resume after a reconnect (also after `deauth()`, which reconnects). A remembered channel the hub now refuses is dropped (an `error` event) and the others sent again. */
  resumed: { recovered: string[]; not_recovered: string[] };
  /** Unsolicited errors and errors of subscriptions re-sent by the client (e.g. `unauthorized` when the session ended). */
  error: NaxError;
  /** Every parsed message from the hub, before the client handles it. */
  message: Record<string, unknown>;
}

export class NaxClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly stats: ClientStats;
  /** Opens the connection (and keeps reopening it until `close`). */
  connect(): void;
  /** Registers a listener; returns a function that removes it. Listeners survive reconnects. */
  on<K extends keyof ClientEvents>(event: K, listener: (event: ClientEvents[K]) => void): () => void;
  /** Adds channels; remembered and re-subscribed (with `resume`) after every reconnect. Resolves on `subscribed` (while not connected: once the connection is restored, the call's channels in a frame of their own, or rejects with `timeout` after `requestTimeoutMs`). Channels already held are left as they are. A refusal (e.g. `unknown_channel`, `unauthorized` for a private channel before `auth`) rejects and forgets the channels of that call; a `disconnected` or `timeout` rejection keeps them remembered (subscribed when the connection is back). */
  subscribe(channels: string[]): Promise<void>;
  /** Removes channels (and their kept state). */
  unsubscribe(channels: string[]): Promise<void>;
  /** Authenticates; the token (or the provider's next token) is sent again after every reconnect, before private channels are re-subscribed and before any op asked for from a `state: open` listener. Again on an authenticated connection (a token refresh of the same user): private channels are left as they are. A token refused (`unauthorized`, or `bad_request` for another user's) is not kept. `tokenProvider`, when given, is called for a fresh token on every reconnect (the token given to `auth` is sent once: on the open connection, or by the next restore when not open; if the hub refuses it there, the provider is asked at once) and when the hub ends the session; while it is waited for, only the ops that need auth (order ops, private subscribes) are held back (public channels and pings go on); a failed call (or one over `tokenProviderTimeoutMs`) and a refused token make the client ask it again with backoff, up to 4 times, then it emits an `unauthorized` error and the connection stays unauthenticated. */
  auth(token: string, options?: { cancelOnDisconnect?: boolean; tokenProvider?: () => Promise<string> }): Promise<{ user_id: string; cancel_on_disconnect: boolean }>;
  /** Forgets the token, the provider, the private channels and `orders`/`balances`, and makes the hub forget the user: closes the socket and reconnects at once (no backoff), the public channels resumed. Also while an `auth` waits for its answer: that `auth` then rejects and its answer is ignored. Resolves when the new connection is open and restored, or after `requestTimeoutMs` if it is not back by then (the hub forgot the user at the close; the restore follows when the connection is back); at once when not authenticated or not connected; never rejects. Does not log out over REST. With `cancelOnDisconnect`, the hub cancels the user's orders at that close. */
  deauth(): Promise<void>;
  /** Order ops need an open, authenticated connection; otherwise they reject (`disconnected` / `closed` at once, `unauthorized` from the hub). A `disconnected` or `timeout` rejection of `placeOrder` means the order may have been placed: placing it again with the same `client_order_id` is safe (the hub answers the existing order, `created: false`). */
  placeOrder(order: OrderRequest): Promise<{ order: Order; created: boolean }>;
  cancelOrder(orderId: string): Promise<Order>;
  /** Waits up to `cancelAllTimeoutMs` (default 60 s). */
  cancelAll(pair?: string): Promise<string[]>;
  cancelAfter(timeoutMs: number): Promise<{ timeout_ms: number; trigger_ts: number | null }>;
  /** The kept book of `book.PAIR` / `depthN.PAIR`; undefined until its first state message, and while a book that failed its checksum (or missed an update) waits for its fresh state. */
  book(channel: string): OrderBook | undefined;
  /** The kept candles of a candles channel, oldest first (the client's own array: do not modify). */
  candles(channel: string): readonly Candle[];
  /** The orders and balances seen on the private channels since `auth`, by id / asset: every open order and the newest 1,000 finished ones (filled, cancelled, rejected). No history: what changed while disconnected is missing; after a reconnect (`resumed`) re-read open orders and balances over REST. */
  readonly orders: ReadonlyMap<string, Order>;
  readonly balances: ReadonlyMap<string, Balance>;
  /** Closes with 1000 and stops reconnecting; the state is `closed` at once, so ops asked for after it reject with `closed`, as do pending ones. Resolves when the socket is closed. */
  close(): Promise<void>;
}
