// The protocol's book checksum (docs/PROTOCOL.md "Books and the checksum";
// the hub's implementation is orderbook/src/checksum.rs): CRC-32 (IEEE) of
// the top asks (lowest first) then the top bids (highest first), each
// level's price then quantity with the "." and leading zeros removed.

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 (IEEE 802.3, as zlib) of a string's bytes; the string is taken as
 * ASCII/Latin-1 (one byte per UTF-16 unit), which is all the protocol feeds it.
 * @param {string} text
 * @returns {number} unsigned 32-bit
 */
export function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * A decimal string with its "." and leading zeros removed ("0.250000" -> "250000").
 * @param {string} value
 * @returns {string}
 */
function digits(value) {
  const dot = value.indexOf(".");
  const joined = dot < 0 ? value : value.slice(0, dot) + value.slice(dot + 1);
  let start = 0;
  while (start < joined.length && joined.charCodeAt(start) === 48) start++;
  return joined.slice(start);
}

/**
 * The protocol's checksum of a book's top `levels` (default 10, at most 10)
 * levels each side. `bids` highest first, `asks` lowest first.
 * @param {[string, string][]} bids
 * @param {[string, string][]} asks
 * @param {number} [levels]
 * @returns {number}
 */
export function bookChecksum(bids, asks, levels = 10) {
  const depth = Math.min(levels, 10);
  let text = "";
  for (const side of [asks, bids]) {
    const n = Math.min(depth, side.length);
    for (let i = 0; i < n; i++) text += digits(side[i][0]) + digits(side[i][1]);
  }
  return crc32(text);
}
