// Unit tests of the account part's exact decimals (hub/web/account/decimal.js):
// what the order form and the deposit form accept, refuse and send.

import { test } from "node:test";
import assert from "node:assert/strict";
import { checkDecimal, compareDecimal, multiply, step } from "../web/account/decimal.js";

test("checkDecimal pads to the scale and refuses more decimals, non-plain forms, zero and under-min", () => {
  assert.deepEqual(checkDecimal("0.001", 6, { min: "0.000010" }), { value: "0.001000" });
  assert.deepEqual(checkDecimal(" 64000 ", 2), { value: "64000.00" });
  assert.deepEqual(checkDecimal("007.5", 2), { value: "7.50" });
  assert.deepEqual(checkDecimal("12.", 2), { value: "12.00" });
  assert.deepEqual(checkDecimal("5", 0), { value: "5" });
  assert.match(checkDecimal("0.0000001", 6, { label: "quantity" }).error, /quantity takes at most 6 decimals \(step 0\.000001\)/);
  assert.match(checkDecimal("1.5", 0).error, /takes no decimals/);
  for (const bad of ["1e3", "-1", "+1", ".5", "1,5", "0x10", "1.2.3", "abc"]) assert.match(checkDecimal(bad, 2).error, /plain decimal/, bad);
  assert.match(checkDecimal("", 2, { label: "price" }).error, /Enter a price/);
  assert.match(checkDecimal("0.00", 2).error, /more than zero/);
  assert.match(checkDecimal("0.000009", 6, { label: "quantity", min: "0.000010" }).error, /at least 0\.000010/);
  assert.deepEqual(checkDecimal("0.000010", 6, { min: "0.000010" }), { value: "0.000010" });
  // Past float precision: still exact.
  assert.deepEqual(checkDecimal("90071992547409930.12", 2), { value: "90071992547409930.12" });
});

test("compareDecimal, multiply and step are exact across scales", () => {
  assert.equal(compareDecimal("1000.00000000", "999.99"), 1);
  assert.equal(compareDecimal("0.10", "0.1"), 0);
  assert.equal(compareDecimal("0.000009", "0.00001"), -1);
  assert.equal(multiply("31985.60", "0.001000", 2), "31.98");
  assert.equal(multiply("0.03123", "1.500", 5), "0.04684");
  assert.equal(multiply("0.1", "0.2", 2), "0.02");
  assert.equal(step(0), "1");
  assert.equal(step(2), "0.01");
  assert.equal(step(6), "0.000001");
});
