// @nax/stream-client: not built yet (a helper's branch fills it); the
// contract is ../index.d.ts.
export class NaxClient {
  constructor(options) { this.options = options; }
  on() { return () => {}; }
  connect() {}
}
