// The depth chart (#depth): cumulative bid and ask quantity as two stepped
// areas around the mid price, from the same levels as the ladder. Numbers
// become floats here only to be drawn; the labels under the middle are the
// best bid and best ask as the hub sent them.

import { el, fill } from "../dom.js";
import { autoCanvas, palette } from "./canvas.js";

/** Cumulative [price, total] steps of `levels` (best first), as floats. */
function steps(levels) {
  let total = 0;
  return levels.map(([price, qty]) => [Number(price), (total += Number(qty))]);
}

/** Builds the chart inside `root`; returns `{show(bids, asks, market), clear(market)}`. */
export function createDepth(root) {
  const plot = el("div", { class: "plot" });
  fill(root, el("h2", {}, "Depth"), plot);
  let latest = null;

  const { canvas, redraw } = autoCanvas(plot, "depth-canvas", "Depth chart", (g, width, height) => {
    if (!latest || !latest.bids.length || !latest.asks.length) return;
    const colors = palette(root);
    const bids = steps(latest.bids);
    const asks = steps(latest.asks);
    const mid = (bids[0][0] + asks[0][0]) / 2;
    const reach = Math.max(mid - bids[bids.length - 1][0], asks[asks.length - 1][0] - mid) || 1;
    const top = Math.max(bids[bids.length - 1][1], asks[asks.length - 1][1]) * 1.1 || 1;
    const axis = 16;
    const plotHeight = height - axis;
    const x = (price) => ((price - (mid - reach)) / (2 * reach)) * width;
    const y = (total) => plotHeight - (total / top) * (plotHeight - 4);

    const area = (points, edge, color) => {
      g.beginPath();
      g.moveTo(x(points[0][0]), plotHeight);
      let previous = plotHeight;
      for (const [price, total] of points) {
        g.lineTo(x(price), previous);
        g.lineTo(x(price), y(total));
        previous = y(total);
      }
      g.lineTo(edge, previous);
      g.lineTo(edge, plotHeight);
      g.closePath();
      g.globalAlpha = 0.25;
      g.fillStyle = color;
      g.fill();
      g.globalAlpha = 1;
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.stroke();
    };
    area(bids, 0, colors.bid);
    area(asks, width, colors.ask);

    g.strokeStyle = colors.line;
    g.beginPath();
    g.moveTo(width / 2, 0);
    g.lineTo(width / 2, plotHeight);
    g.stroke();
    g.font = `11px ${colors.mono}`;
    g.fillStyle = colors.muted;
    g.textBaseline = "bottom";
    const scale = latest.market.price_scale;
    g.textAlign = "left";
    g.fillText((mid - reach).toFixed(scale), 2, height);
    g.textAlign = "right";
    g.fillStyle = colors.bid;
    g.fillText(latest.bids[0][0], width / 2 - 4, height);
    g.textAlign = "left";
    g.fillStyle = colors.ask;
    g.fillText(latest.asks[0][0], width / 2 + 4, height);
    g.fillStyle = colors.muted;
    g.textAlign = "right";
    g.fillText((mid + reach).toFixed(scale), width - 2, height);
  });

  const label = (market) => canvas.setAttribute("aria-label", `Depth chart of ${market.pair}: cumulative bid and ask quantity around the spread`);
  return {
    /** Levels best first, as the ladder gets them. */
    show(bids, asks, market) {
      latest = { bids, asks, market };
      label(market);
      redraw();
    },
    /** Empties the chart; `market` is the pair it will show next. */
    clear(market) {
      latest = null;
      label(market);
      redraw();
    },
  };
}
