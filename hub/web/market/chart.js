// The candlestick chart (#chart): its own canvas drawing (no library) of the
// selected interval's candles, the open one updated live; a price axis on
// the right, time labels below, volume bars at the bottom and a line at the
// last price. The interval buttons call `onInterval`.

import { el, fill } from "../dom.js";
import { autoCanvas, palette } from "./canvas.js";

/** The candle intervals of the hub's candlesI.PAIR channels. */
export const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];
const SLOT = 8; // CSS pixels per candle
const TIME_AXIS = 16;
const VOLUME_SHARE = 0.18;

/** A round step (1, 2 or 5 × 10^k) near `raw`. */
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit >= 5 ? 5 : unit >= 2 ? 2 : 1) * power;
}

const pad = (n) => String(n).padStart(2, "0");
function timeLabel(micros, interval) {
  const t = new Date(Math.floor(micros / 1000));
  if (interval === "1d") return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
  if (interval === "4h") return `${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}h`;
  return `${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/**
 * Builds the chart inside `root`; returns `{show(candles, market, interval)}`.
 * `onInterval(interval)` runs when a button is pressed.
 */
export function createChart(root, onInterval) {
  const buttons = INTERVALS.map((interval) => {
    const button = el("button", { type: "button", class: "interval", dataset: { interval }, "aria-pressed": "false" }, interval);
    button.addEventListener("click", () => onInterval(interval));
    return button;
  });
  const plot = el("div", { class: "plot" });
  const title = el("span", { class: "chart-title muted", id: "chart-title" });
  fill(root, el("div", { class: "chart-head" }, el("h2", {}, "Chart"), title, el("div", { class: "intervals", role: "group", "aria-label": "Interval" }, buttons)), plot);
  let latest = null;

  const { canvas, redraw } = autoCanvas(plot, "chart-canvas", "Candlestick chart", (g, width, height) => {
    const colors = palette(root);
    g.font = `11px ${colors.mono}`;
    if (!latest || !latest.candles.length) {
      g.fillStyle = colors.muted;
      g.textAlign = "center";
      g.fillText("waiting for trades…", width / 2, height / 2);
      root.dataset.drawn = "0";
      return;
    }
    const { candles, market, interval } = latest;
    const scale = market.price_scale;
    // Axis width from the widest label the data can have.
    const highest = Math.max(...candles.map((c) => Number(c.high)));
    const axis = Math.ceil(g.measureText(highest.toFixed(scale)).width) + 12;
    const plotWidth = Math.max(SLOT, width - axis);
    const count = Math.max(1, Math.floor(plotWidth / SLOT));
    const shown = candles.slice(-count);
    const priceHeight = (height - TIME_AXIS) * (1 - VOLUME_SHARE);
    const volumeTop = priceHeight + 4;
    const volumeHeight = height - TIME_AXIS - volumeTop;

    let low = Math.min(...shown.map((c) => Number(c.low)));
    let high = Math.max(...shown.map((c) => Number(c.high)));
    const tick = 10 ** -scale;
    if (high - low < tick * 4) {
      low -= tick * 2;
      high += tick * 2;
    }
    const margin = (high - low) * 0.06;
    low -= margin;
    high += margin;
    const y = (price) => ((high - price) / (high - low)) * priceHeight;
    const maxVolume = Math.max(...shown.map((c) => Number(c.volume))) || 1;
    const left = plotWidth - shown.length * SLOT; // newest candle at the right edge

    // Grid and price labels (none where the last price's label goes).
    const last = shown[shown.length - 1];
    const ly = Math.round(y(Number(last.close))) + 0.5;
    const step = niceStep((high - low) / Math.max(2, Math.floor(priceHeight / 50)));
    g.textBaseline = "middle";
    g.textAlign = "left";
    for (let p = Math.ceil(low / step) * step; p <= high; p += step) {
      const py = Math.round(y(p)) + 0.5;
      g.strokeStyle = colors.line;
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(0, py);
      g.lineTo(plotWidth, py);
      g.stroke();
      if (Math.abs(py - ly) < 14) continue;
      g.fillStyle = colors.muted;
      g.fillText(p.toFixed(scale), plotWidth + 6, py);
    }

    // Candles, volume and time labels.
    const labelEvery = Math.max(1, Math.ceil(70 / SLOT));
    const body = Math.max(1, SLOT - 2);
    shown.forEach((c, i) => {
      const x = left + i * SLOT;
      const open = Number(c.open);
      const close = Number(c.close);
      const color = close >= open ? colors.bid : colors.ask;
      const center = Math.round(x + SLOT / 2) + 0.5;
      g.strokeStyle = color;
      g.fillStyle = color;
      g.beginPath();
      g.moveTo(center, y(Number(c.high)));
      g.lineTo(center, y(Number(c.low)));
      g.stroke();
      const top = y(Math.max(open, close));
      g.fillRect(x + 1, top, body, Math.max(1, y(Math.min(open, close)) - top));
      const vh = (Number(c.volume) / maxVolume) * volumeHeight;
      g.globalAlpha = 0.4;
      g.fillRect(x + 1, volumeTop + volumeHeight - vh, body, vh);
      g.globalAlpha = 1;
      if ((shown.length - 1 - i) % labelEvery === 0 && x > 20) {
        g.fillStyle = colors.muted;
        g.textAlign = "center";
        g.textBaseline = "bottom";
        g.fillText(timeLabel(c.start, interval), center, height);
      }
    });

    // The last price: a dashed line and its label on the axis.
    const lastColor = Number(last.close) >= Number(last.open) ? colors.bid : colors.ask;
    g.setLineDash([3, 3]);
    g.strokeStyle = lastColor;
    g.beginPath();
    g.moveTo(0, ly);
    g.lineTo(plotWidth, ly);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = lastColor;
    g.fillRect(plotWidth + 2, ly - 8, axis - 2, 16);
    g.fillStyle = "#fff";
    g.textAlign = "left";
    g.textBaseline = "middle";
    g.fillText(last.close, plotWidth + 6, ly);
    root.dataset.drawn = String(shown.length);
  });

  return {
    /** `candles` oldest first (the open one last), of `interval`. */
    show(candles, market, interval) {
      latest = { candles, market, interval };
      root.dataset.interval = interval;
      title.textContent = `${market.pair} · ${interval}`;
      const last = candles.length ? `, last close ${candles[candles.length - 1].close}` : ", waiting for trades";
      canvas.setAttribute("aria-label", `Candlestick chart of ${market.pair}, ${interval} candles with volume${last}`);
      for (const button of buttons) {
        const active = button.dataset.interval === interval;
        button.classList.toggle("active", active);
        button.setAttribute("aria-pressed", String(active));
      }
      redraw();
    },
  };
}
