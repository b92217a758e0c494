// Small form pieces the account part's sections share: labelled fields,
// a message line, and "run this, showing busy and the hub's error".

import { el, fill } from "../dom.js";

/** A `<label>` holding its caption, the control and an optional hint line. */
export function field(caption, control, hint) {
  return el("label", { class: "acct-field" }, el("span", { class: "acct-caption" }, caption), control, hint ? el("span", { class: "acct-hint muted" }, hint) : null);
}

/** Shows `text` in a message line (`kind`: "ok", "error" or "info"; empty text hides it). */
export function say(node, text, kind = "info") {
  fill(node, text ?? "");
  node.dataset.kind = kind;
  node.hidden = !text;
}

/** A message line, hidden until `say` writes in it. */
export function messageLine(testid) {
  const node = el("p", { class: "acct-msg", "data-testid": testid, role: "status" });
  node.hidden = true;
  return node;
}

/** "code: message" of an ApiError or NaxError, for people. */
export function describe(error) {
  if (error?.code && error?.message) return `${error.code}: ${error.message}`;
  return error?.code ?? error?.message ?? String(error);
}

/**
 * Runs `work()` with `button` disabled and its text replaced by `busyText`;
 * errors go to `line` as "code: message". Resolves to work's result, or
 * undefined after an error.
 */
export async function busy(button, busyText, line, work) {
  const text = button.textContent;
  button.disabled = true;
  button.textContent = busyText;
  try {
    return await work();
  } catch (error) {
    say(line, describe(error), "error");
    return undefined;
  } finally {
    button.disabled = false;
    button.textContent = text;
  }
}
