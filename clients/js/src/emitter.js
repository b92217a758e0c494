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
   * the others or the client: its error is rethrown on a fresh task.
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
        setTimeout(() => { throw error; }, 0);
      }
    }
  }
}
