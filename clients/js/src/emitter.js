// A minimal typed event emitter whose listeners survive everything but
// their own removal (the client never clears them, reconnects included).

export class Emitter {
  /** @type {Map<string, Set<(event: any) => void>>} */
  #listeners = new Map();

  /**
   * Registers a listener; returns a function that removes it.
   * @param {string} event
   * @param {(event: any) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => { set.delete(listener); };
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop
   * the others or the client: its error goes to `globalThis.reportError`
   * (browsers: the console and `error` event) when there is one, else to
   * console.error; it is never rethrown.
   * @param {string} event
   * @param {any} payload
   */
  emit(event, payload) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        report(error);
      }
    }
  }
}

/** @param {unknown} error */
function report(error) {
  try {
    if (typeof globalThis.reportError === "function") globalThis.reportError(error);
    else console.error("NaxClient: a listener threw:", error);
  } catch {
    // reporting must not break the client either
  }
}
