// Decimal strings as the hub writes them ("0.001000", "63999.90"): checked,
// compared and multiplied exactly (BigInt units), never through floats, so
// what goes back to the server is what the user typed.

const PLAIN = /^(\d+)(?:\.(\d*))?$/;

/**
 * Checks `text` as a positive decimal with at most `scale` decimals and,
 * when given, at least `min` (a decimal string). Returns
 * `{value}` (padded to exactly `scale` decimals) or `{error}` (a sentence
 * naming `label`).
 */
export function checkDecimal(text, scale, { label = "value", min = null } = {}) {
  const trimmed = String(text ?? "").trim();
  if (trimmed === "") return { error: `Enter a ${label}.` };
  const match = PLAIN.exec(trimmed);
  if (!match) return { error: `The ${label} must be a plain decimal number like ${example(scale)}.` };
  const fraction = match[2] ?? "";
  if (fraction.length > scale) {
    return { error: scale === 0 ? `The ${label} takes no decimals.` : `The ${label} takes at most ${scale} decimal${scale === 1 ? "" : "s"} (step ${step(scale)}).` };
  }
  const value = pad(match[1], fraction, scale);
  if (toUnits(value, scale) <= 0n) return { error: `The ${label} must be more than zero.` };
  if (min !== null && compareDecimal(value, min) < 0) return { error: `The ${label} must be at least ${min}.` };
  return { value };
}

/** `-1`, `0` or `1` as `a` is less than, equal to or more than `b` (both non-negative decimal strings, any scales). */
export function compareDecimal(a, b) {
  const scale = Math.max(decimals(a), decimals(b));
  const x = toUnits(a, scale);
  const y = toUnits(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `a × b` as a decimal string with `scale` decimals, rounded down (for showing an order's total). */
export function multiply(a, b, scale) {
  const sa = decimals(a);
  const sb = decimals(b);
  const product = toUnits(a, sa) * toUnits(b, sb);
  const shift = sa + sb - scale;
  const units = shift >= 0 ? product / 10n ** BigInt(shift) : product * 10n ** BigInt(-shift);
  return fromUnits(units, scale);
}

/** The smallest step at `scale`: `step(2)` is "0.01", `step(0)` is "1". */
export function step(scale) {
  return scale === 0 ? "1" : "0." + "0".repeat(scale - 1) + "1";
}

function example(scale) {
  return scale === 0 ? "12" : "12." + "5".padEnd(scale, "0");
}

function decimals(text) {
  const dot = String(text).indexOf(".");
  return dot < 0 ? 0 : String(text).length - dot - 1;
}

function pad(whole, fraction, scale) {
  const int = whole.replace(/^0+(?=\d)/, "");
  return scale === 0 ? int : `${int}.${fraction.padEnd(scale, "0")}`;
}

function toUnits(text, scale) {
  const [whole, fraction = ""] = String(text).split(".");
  return BigInt(whole + fraction.padEnd(scale, "0").slice(0, scale));
}

function fromUnits(units, scale) {
  if (scale === 0) return units.toString();
  const digits = units.toString().padStart(scale + 1, "0");
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
