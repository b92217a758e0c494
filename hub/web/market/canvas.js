// A canvas that fills its container at the device's pixel ratio: resized by
// a ResizeObserver, drawn in CSS pixels (the context is scaled), redrawn by
// the owner's `draw(ctx, width, height)` at most once per frame. It is an
// image to assistive technology: the owner keeps its aria-label saying
// what it shows.

import { el } from "../dom.js";
import { frame } from "./frame.js";

/**
 * Appends a canvas (role="img", labelled `label`) to `parent` and returns
 * `{canvas, redraw}`; `draw` gets the 2D context already scaled to CSS
 * pixels, and the size in CSS pixels.
 */
export function autoCanvas(parent, className, label, draw) {
  const canvas = el("canvas", { class: className, role: "img", "aria-label": label });
  parent.append(canvas);
  const context = canvas.getContext("2d");
  let width = 0;
  let height = 0;
  const redraw = frame(() => {
    const ratio = window.devicePixelRatio || 1;
    const pixelWidth = Math.max(1, Math.round(width * ratio));
    const pixelHeight = Math.max(1, Math.round(height * ratio));
    if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
      canvas.width = pixelWidth;
      canvas.height = pixelHeight;
    }
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    if (width > 0 && height > 0) draw(context, width, height);
  });
  const observer = new ResizeObserver(([entry]) => {
    width = entry.contentRect.width;
    height = entry.contentRect.height;
    redraw();
  });
  // The device-pixel box also reports a devicePixelRatio change (zoom,
  // another screen); browsers without it get the CSS box.
  try {
    observer.observe(canvas, { box: "device-pixel-content-box" });
  } catch {
    observer.observe(canvas);
  }
  return { canvas, redraw };
}

/** The page's CSS colour variables, read once per draw (they may be themed). */
export function palette(node) {
  const style = getComputedStyle(node);
  const read = (name) => style.getPropertyValue(name).trim();
  return { bid: read("--bid"), ask: read("--ask"), muted: read("--muted"), line: read("--line"), mono: read("--mono") };
}
