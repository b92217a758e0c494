// NaxError: the error of every rejected promise and every `error` event.

/** An error with the hub's error code (docs/PROTOCOL.md "Error codes") or the client's own: `disconnected`, `timeout`, `closed`. */
export class NaxError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {number | null} [id] the op id it answers (null for unsolicited errors)
   */
  constructor(code, message = code, id = null) {
    super(message);
    this.name = "NaxError";
    this.code = code;
    this.id = id;
  }
}
