// The check of a real hub's log for the JavaScript tests (the client's and
// the page's), the same as the Rust tests' (hub/tests/common/logs.rs and
// binary.rs; docs/OPERATIONS.md, "Logs"): every line of the hub's output
// is a JSON object with string `timestamp`, `level` and `target` (the hub
// writes JSON lines when its output is not a terminal), and no line holds
// a secret the suite used, whole or its last 24 characters, in the line's
// text or in any string value once decoded. The secrets: what the
// helpers registered (`forbid`: users' emails, passwords, access and
// refresh tokens, TOTP secrets), the hub's config file's and `NAX_*`
// variables' values whose name says secret, token, password or key, the
// key files the hub wrote under `<data_dir>/keys/`, and anything shaped
// like an email address or a JWT. Reports name the line, its level and
// target and the kind of secret, never the secret.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** (kind, value) pairs registered by the helpers, for every hub of this process. */
const forbidden = [];

/** Adds `value` (a user's email, password, token, TOTP secret) to what no hub log may hold. */
export function forbid(kind, value) {
  if (typeof value === "string" && value.length > 0) forbidden.push([kind, value]);
}

/** Shapes no hub log may hold whatever the suite registered. */
const PATTERNS = [
  ["an email address", /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/],
  ["a JWT", /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./],
];

/** Whether a setting's name says it holds a secret (as hub/tests/common/binary.rs reads it). */
function secretName(name) {
  const lower = name.toLowerCase();
  return ["secret", "token", "password", "redis_url", "access_key"].some((w) => lower.includes(w)) && !lower.endsWith("_ttl_secs");
}

/**
 * The secrets of a hub's configuration: the TOML's `key = "value"` lines
 * and the `NAX_*` variables whose name says secret (values of 8 or more
 * characters), and each line of 16 or more characters of the key files
 * under `dir/keys/` (PEM armour aside).
 */
export function configSecrets(toml, env, dir) {
  const out = [];
  for (const line of toml.split("\n")) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"/.exec(line);
    if (m && secretName(m[1]) && m[2].length >= 8) out.push([`config ${m[1]}`, m[2]]);
  }
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith("NAX_") && secretName(name) && String(value).length >= 8) out.push([name, String(value)]);
  }
  let files = [];
  try {
    files = readdirSync(join(dir, "keys"));
  } catch {
    // no keys written
  }
  for (const file of files) {
    for (const line of readFileSync(join(dir, "keys", file), "utf8").split("\n").map((l) => l.trim())) {
      if (line.length >= 16 && !line.startsWith("-----")) out.push([`key file ${file}`, line]);
    }
  }
  return out;
}

function strings(value, out) {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => strings(v, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out);
    }
  }
  return out;
}

/**
 * What is wrong with the log `text` given `secrets` ((kind, value) pairs,
 * those registered with `forbid` added): one entry per bad line. Secrets
 * shorter than 8 characters are not searched (they would match by chance).
 */
export function violations(text, secrets = []) {
  const probes = [...forbidden, ...secrets]
    .filter(([, v]) => v.length >= 8)
    .map(([kind, v]) => [kind, v, v.slice(-24)]);
  const found = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    const n = i + 1;
    let value;
    try {
      value = JSON.parse(line);
    } catch (error) {
      found.push(`line ${n}: not JSON (${error.message})`);
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      found.push(`line ${n}: not a JSON object`);
      return;
    }
    for (const key of ["timestamp", "level", "target"]) {
      if (typeof value[key] !== "string") found.push(`line ${n}: no ${key}`);
    }
    const where = `line ${n} (${value.level ?? "?"} ${value.target ?? "?"})`;
    const texts = strings(value, [line]);
    for (const [kind, whole, tail] of probes) {
      if (texts.some((s) => s.includes(whole) || s.includes(tail))) found.push(`${where}: holds the ${kind}`);
    }
    for (const [kind, pattern] of PATTERNS) {
      if (texts.some((s) => pattern.test(s))) found.push(`${where}: holds ${kind}`);
    }
  });
  return found;
}
