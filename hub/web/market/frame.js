// Repaint at most once per animation frame: `frame(paint)` returns a
// `request()` that schedules `paint` for the next frame unless it is
// already scheduled, however many events arrive in between.

/** @param {() => void} paint @returns {() => void} request */
export function frame(paint) {
  let pending = false;
  return function request() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      paint();
    });
  };
}
