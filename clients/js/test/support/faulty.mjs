// A WebSocket wrapper for fault injection: `fault(data)` sees every frame
// from the hub before the client does and returns it (possibly changed) or
// null to drop it. Passed to NaxClient as `options.WebSocket`.

/**
 * @param {(data: string) => string | null} fault
 * @returns {typeof WebSocket}
 */
export function faultyWebSocket(fault) {
  return class FaultyWebSocket {
    constructor(url) {
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      const inner = (this.inner = new WebSocket(url));
      inner.onopen = (event) => this.onopen?.(event);
      inner.onclose = (event) => this.onclose?.(event);
      inner.onerror = (event) => this.onerror?.(event);
      inner.onmessage = (event) => {
        const data = fault(event.data);
        if (data !== null) this.onmessage?.({ data });
      };
    }
    get readyState() { return this.inner.readyState; }
    send(data) { this.inner.send(data); }
    close(code, reason) { this.inner.close(code, reason); }
  };
}
