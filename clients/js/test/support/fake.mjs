// A scripted stand-in for WebSocket (no network), to test the client's
// timing decisions: backoff, `shutdown`, the liveness ping. `script(socket)`
// runs for each new socket; the socket records what the client sent, and
// `socket.onsend(frame)`, when the script sets it, answers each frame.

/**
 * @param {(socket: any) => void} script
 * @returns {{ WebSocket: any, sockets: any[] }}
 */
export function fakeWebSocket(script) {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.createdAt = performance.now();
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      /** @type {((frame: any) => void) | null} */
      this.onsend = null;
      sockets.push(this);
      queueMicrotask(() => script(this));
    }
    /** Test side: opens the socket. */
    open() { this.onopen?.({}); }
    /** Test side: delivers a message from the "hub". */
    deliver(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
    /** Test side: the connection fails or ends. */
    fail(code = 1006) { this.onclose?.({ code }); }
    send(data) {
      const frame = JSON.parse(data);
      frame.sentAt = performance.now();
      this.sent.push(frame);
      this.onsend?.(frame);
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      setTimeout(() => this.onclose?.({ code }), 0);
    }
  }
  return { WebSocket: FakeWebSocket, sockets };
}

/** The usual answers of a hub (on a microtask): `subscribed` to every subscribe, `authed` to every auth, `pong` to pings. */
export function answerOps(socket, frame) {
  queueMicrotask(() => answerNow(socket, frame));
}

function answerNow(socket, frame) {
  if (frame.op === "subscribe") socket.deliver({ type: "subscribed", id: frame.id, channels: frame.channels, recovered: [], not_recovered: [] });
  else if (frame.op === "auth") socket.deliver({ type: "authed", id: frame.id, user_id: "u1", cancel_on_disconnect: false });
  else if (frame.op === "ping") socket.deliver({ type: "pong", id: frame.id, ts: 1 });
}
