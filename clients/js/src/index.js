// @nax/stream-client: the client of NA-X Stream's WebSocket protocol
// (docs/PROTOCOL.md). No dependencies, no build step: browsers import this
// file as an ES module (the hub serves it at /client/index.js), Node >= 20.10
// imports the package. The contract is ../index.d.ts.

export { NaxClient } from "./client.js";
export { NaxError } from "./errors.js";
export { OrderBook, comparePrices } from "./book.js";
export { crc32, bookChecksum } from "./checksum.js";
export { parseChannel } from "./channels.js";
