// A TCP proxy on 127.0.0.1 in front of a hub, so that a test can cut every
// connection at once (what a load balancer or a network failure does)
// while the hub keeps running.

import { createServer, connect } from "node:net";

/** Forwards 127.0.0.1:<proxy.port> to 127.0.0.1:`targetPort`. */
export function startProxy(targetPort) {
  const pairs = new Set();
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      ok({
        port: server.address().port,
        /** How many client connections are open through the proxy. */
        get connections() {
          return pairs.size;
        },
        /** Resets every open connection (both sides see the TCP connection die). */
        dropAll() {
          for (const { client, upstream } of pairs) {
            client.resetAndDestroy();
            upstream.resetAndDestroy();
          }
          pairs.clear();
        },
        close() {
          this.dropAll();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}
