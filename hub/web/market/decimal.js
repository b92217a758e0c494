// Exact arithmetic on the hub's fixed-scale decimal strings ("64000.10"):
// sums and differences as BigInt units of the scale, so that what the page
// shows as a number is never a float's rounding. (Floats are made only for
// drawing: bar widths, chart positions.)

/** "64000.10" at scale 2 → 6400010n; "-0.5" at scale 2 → -50n. */
export function toUnits(text, scale) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const units = BigInt((whole || "0") + fraction.padEnd(scale, "0").slice(0, scale));
  return negative ? -units : units;
}

/** 6400010n at scale 2 → "64000.10". */
export function fromUnits(units, scale) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const text = scale > 0 ? `${whole}.${digits.slice(digits.length - scale)}` : whole;
  return negative ? `-${text}` : text;
}

/** -1, 0 or 1: the sign of a decimal string, read from its digits. */
export function signOf(text) {
  if (!text || !/[1-9]/.test(text)) return 0;
  return text.startsWith("-") ? -1 : 1;
}
