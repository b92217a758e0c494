// A scripted stand-in for WebSocket (no network), to test the client's
// timing decisions: backoff, `shutdown`, the liveness ping. `script(socket)`
// runs for each new socket; the socket records what the client sent.

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
      sockets.push(this);
      queueMicrotask(() => script(this));
    }
    /** Test side: opens the socket. */
    open() { this.onopen?.({}); }
    /** Test side: delivers a message from the "hub". */
    deliver(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
    /** Test side: the connection fails or ends. */
    fail(code = 1006) { this.onclose?.({ code }); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code, reason) {
      this.closedWith = { code, reason };
      setTimeout(() => this.onclose?.({ code }), 0);
    }
  }
  return { WebSocket: FakeWebSocket, sockets };
}
