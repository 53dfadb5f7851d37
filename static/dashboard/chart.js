// The intraday chart dialog: candles and volume of one symbol, drawn with
// TradingView's lightweight-charts (static/vendor/lightweight-charts, Apache-2.0)
// from the books of intraday.js.
//
// - The library (200 kB) is loaded the first time a chart opens, by a <script>
//   from this origin: the Content-Security-Policy allows 'self' only, no inline
//   script or style. Its attribution logo is off because it injects a <style>
//   element the policy refuses; the dialog carries the attribution as text.
// - 1-minute candles; a server with fewer than MIN_CLOSED closed 1-minute bars
//   (a fresh start) gets the 1-second ones, so candles show within seconds.
// - Colours come from the page's CSS variables and follow the light/dark theme.
// - Times on the axis are the browser's local time, like the rest of the page
//   (lightweight-charts draws UTC, so times are shifted by the zone's offset).
//
// DOM hooks (what the browser tests read), on #chart-dialog:
//   [data-chart-state]  closed|loading|ready|empty|unavailable
//   [data-symbol] [data-interval]   what is drawn
//   [data-history-candles]  candles drawn from /bars when it opened
//   [data-candles]      candles drawn now (the forming one included)
//   [data-last-start] [data-last-close]  the newest candle
//   [data-live-bars]    `bar` messages applied to it since it opened
//   [data-updates]      times the newest candle moved since it opened

import { intervalMs } from "./bars.js";

// Fewer closed 1-minute bars than this (a server up for a few minutes) and the
// chart shows 1-second candles instead: one or two candles say nothing.
const MIN_CLOSED = 5;

let library = null;

/** window.LightweightCharts, loading the vendored script once. */
export function loadChartLibrary(src) {
  if (window.LightweightCharts) return Promise.resolve(window.LightweightCharts);
  if (!library) {
    library = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => resolve(window.LightweightCharts);
      script.onerror = () => {
        library = null;
        reject(new Error("the chart library did not load"));
      };
      document.head.append(script);
    });
  }
  return library;
}

/** lightweight-charts time (UTC seconds) that reads as the local clock time. */
export function chartTime(ms) {
  return Math.floor(ms / 1000) - new Date(ms).getTimezoneOffset() * 60;
}

function cssColour(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** A colour with an alpha channel, from #rrggbb (anything else unchanged). */
function withAlpha(colour, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (!m) return colour;
  const [r, g, b] = m.slice(1).map((h) => parseInt(h, 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

export class ChartDialog {
  constructor(dialog, intraday, { libraryUrl, intervals }) {
    this.dialog = dialog;
    this.intraday = intraday;
    this.libraryUrl = libraryUrl;
    this.intervals = intervals;
    this.title = dialog.querySelector("#chart-title");
    this.note = dialog.querySelector(".chart-note");
    this.canvas = dialog.querySelector(".chart-canvas");
    this.chart = null;
    this.symbol = null;
    this.book = null;
    this.lastDrawn = null;
    this.released = null; // {symbol, interval} the chart subscribed for itself
    dialog.querySelector(".chart-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => this.onClosed());
    intraday.addEventListener("change", (e) => this.onChange(e.detail));
    this.scheme = window.matchMedia("(prefers-color-scheme: dark)");
    this.scheme.addEventListener("change", () => this.applyTheme());
  }

  set(name, value) {
    this.dialog.dataset[name] = String(value);
  }

  async open(symbol) {
    this.symbol = symbol;
    this.book = null;
    this.lastDrawn = null;
    this.title.textContent = `${symbol}: intraday`;
    this.canvas.setAttribute("aria-label", `Intraday candlestick and volume chart of ${symbol}`);
    this.note.textContent = "Loading the chart…";
    for (const name of ["historyCandles", "candles", "liveBars", "updates"]) this.set(name, 0);
    this.set("symbol", symbol);
    this.set("chartState", "loading");
    this.set("lastStart", "");
    this.set("lastClose", "");
    if (!this.dialog.open) this.dialog.showModal();
    let lib;
    try {
      lib = await loadChartLibrary(this.libraryUrl);
    } catch (err) {
      this.set("chartState", "unavailable");
      this.note.textContent = `The chart cannot be shown: ${err.message}.`;
      return;
    }
    if (!this.chart) this.create(lib);
    const preferred = this.intervals.includes("1m") ? "1m" : this.intervals[0];
    let book = await this.intraday.track(symbol, preferred);
    if (book.bars.size < MIN_CLOSED && preferred !== "1s" && this.intervals.includes("1s")) {
      // A fresh server: (almost) no minute has closed yet; seconds have.
      book = await this.intraday.track(symbol, "1s");
      if (book.interval !== this.intraday.dayInterval) this.released = { symbol, interval: "1s" };
    }
    if (this.symbol !== symbol || !this.dialog.open) return; // closed meanwhile
    this.book = book;
    this.set("interval", book.interval);
    this.chart.applyOptions({
      timeScale: { timeVisible: true, secondsVisible: intervalMs(book.interval) < 60000 },
    });
    this.drawAll();
    // The day so far in view; a handful of candles at their normal width instead
    // of stretched across the chart.
    if (book.bars.size > 60) this.chart.timeScale().fitContent();
    else this.chart.timeScale().scrollToRealTime();
    this.set("historyCandles", book.historyBars ?? 0);
  }

  create(lib) {
    this.lib = lib;
    this.chart = lib.createChart(this.canvas, {
      autoSize: true,
      layout: { attributionLogo: false },
      crosshair: { mode: lib.CrosshairMode.Normal },
    });
    this.candles = this.chart.addSeries(lib.CandlestickSeries, { borderVisible: false });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.1, bottom: 0.3 } });
    this.volume = this.chart.addSeries(lib.HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "volume",
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.75, bottom: 0 } });
    this.applyTheme();
  }

  applyTheme() {
    if (!this.chart) return;
    const text = cssColour("--text", "#1f2937");
    const border = cssColour("--border", "#e5e7eb");
    this.colours = { up: cssColour("--up", "#15803d"), down: cssColour("--down", "#b91c1c") };
    this.chart.applyOptions({
      layout: {
        background: { type: "solid", color: cssColour("--surface", "#ffffff") },
        textColor: text,
        attributionLogo: false,
      },
      grid: { vertLines: { color: border }, horzLines: { color: border } },
      rightPriceScale: { borderColor: border },
      timeScale: { borderColor: border },
    });
    this.candles.applyOptions({
      upColor: this.colours.up,
      downColor: this.colours.down,
      wickUpColor: this.colours.up,
      wickDownColor: this.colours.down,
    });
    if (this.book) this.drawAll();
  }

  point(candle) {
    const time = chartTime(candle.start);
    const up = candle.close >= candle.open;
    return {
      candle: { time, open: candle.open, high: candle.high, low: candle.low, close: candle.close },
      volume: {
        time,
        value: candle.volume ?? 0,
        color: withAlpha(up ? this.colours.up : this.colours.down, 0.45),
      },
    };
  }

  drawAll() {
    const candles = this.book.candles();
    const points = candles.map((c) => this.point(c));
    this.candles.setData(points.map((p) => p.candle));
    this.volume.setData(points.map((p) => p.volume));
    const last = candles[candles.length - 1];
    if (last && last.close < 10) {
      this.candles.applyOptions({ priceFormat: { type: "price", precision: 4, minMove: 0.0001 } });
    }
    this.lastDrawn = last ?? null;
    this.set("candles", candles.length);
    this.describe();
  }

  onChange({ symbol, interval, candle, full, bar }) {
    if (!this.book || symbol !== this.symbol || interval !== this.book.interval) return;
    if (bar) this.set("liveBars", Number(this.dialog.dataset.liveBars) + 1);
    if (full || !candle || (this.lastDrawn && candle.start < this.lastDrawn.start)) {
      this.drawAll(); // history, or a revision of an older bar
    } else {
      const p = this.point(candle);
      this.candles.update(p.candle);
      this.volume.update(p.volume);
      if (!this.lastDrawn || candle.start > this.lastDrawn.start) {
        this.set("candles", Number(this.dialog.dataset.candles) + 1);
      }
      this.lastDrawn = candle;
      this.describe();
    }
    this.set("updates", Number(this.dialog.dataset.updates) + 1);
  }

  /** The hooks and the note: what the newest candle is. */
  describe() {
    const last = this.lastDrawn;
    this.set("lastStart", last ? last.start : "");
    this.set("lastClose", last ? last.close : "");
    this.set("chartState", last ? "ready" : "empty");
    const names = { "1s": "1-second", "1m": "1-minute" };
    const every = names[this.book.interval] ?? this.book.interval;
    this.note.textContent = last
      ? `${every} candles (local time); the last one moves with each trade.`
      : "No bars yet: candles appear as trades arrive.";
  }

  onClosed() {
    this.set("chartState", "closed");
    if (this.released) {
      this.intraday.release(this.released.symbol, this.released.interval);
      this.released = null;
    }
    this.symbol = null;
    this.book = null;
  }
}
