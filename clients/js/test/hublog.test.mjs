// The check of a real hub's log (support/hublog.mjs, run by every
// `hub.stop()`): a clean line passes; a line that is not a JSON object
// with `timestamp`, `level` and `target`, or that holds a registered
// secret (in its text, decoded, or its last 24 characters), an email
// address or a JWT is reported without quoting the secret; and a real
// hub's `stop()` fails when its log holds such a line.

import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { startHub, forbid } from "./support/hub.mjs";
import { violations } from "./support/hublog.mjs";

const PLANTED = "planted-secret-value-0123456789-abcdef";
const clean = JSON.stringify({ timestamp: "2026-12-05T07:00:00Z", level: "INFO", target: "nax::access", message: "request" });
const line = (fields) => JSON.stringify({ timestamp: "t", level: "DEBUG", target: "api::auth", ...fields });

test("a planted secret, an email, a JWT and a line that is not JSON are found, never quoted", () => {
  const secrets = [["JWT key", PLANTED]];
  assert.deepEqual(violations(`${clean}\n`, secrets), []);

  const found = violations(`${clean}\n${line({ token: PLANTED })}\n`, secrets);
  assert.deepEqual(found, ["line 2 (DEBUG api::auth): holds the JWT key"]);
  assert.ok(!found.join("").includes(PLANTED), "the report quotes the secret");
  // Escaped in the line's text, found decoded; the tail of a long secret.
  assert.equal(violations(line({ message: `header ab"cd-${PLANTED}` }), [["password", `ab"cd-${PLANTED}`]]).length, 1);
  assert.equal(violations(line({ message: `…${PLANTED.slice(-24)}` }), secrets).length, 1);
  // Whatever the suite registered: emails and JWTs by their shape.
  assert.deepEqual(violations(line({ user: "someone@example.com" })), ["line 1 (DEBUG api::auth): holds an email address"]);
  assert.deepEqual(violations(line({ auth: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEyMyJ9.sig" })), ["line 1 (DEBUG api::auth): holds a JWT"]);
  // Not JSON, not an object, a field missing.
  const bad = violations(`plain text\n[1]\n{"timestamp":"t","target":"x"}\n`);
  assert.equal(bad.length, 3, bad.join("\n"));
  assert.match(bad[0], /^line 1: not JSON \(/);
  assert.deepEqual(bad.slice(1), ["line 2: not a JSON object", "line 3: no level"]);
});

test("a hub whose log holds a registered secret or a line that is not JSON fails its stop", { timeout: 90_000 }, async () => {
  const hub = await startHub({ ready: false });
  forbid("test secret", PLANTED);
  appendFileSync(hub.logPath, `${line({ token: PLANTED })}\nnot a JSON line\n`);
  await assert.rejects(hub.stop(), (error) => {
    assert.match(error.message, /fails its check/);
    assert.match(error.message, /holds the test secret/);
    assert.match(error.message, /not JSON/);
    assert.ok(!error.message.includes(PLANTED), "the report quotes the secret");
    return true;
  });
  await hub.discard();

  // Its own output alone passes.
  const again = await startHub({ ready: false });
  await again.stop();
});
