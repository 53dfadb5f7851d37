// The dashboard page: cards and a table rendered from one state per symbol, kept
// live by one PriceStream. Configuration comes from data- attributes of
// #dashboard (no inline scripts: the Content-Security-Policy forbids them).
//
// DOM hooks (also what the browser tests read):
//   #connection-status[data-connection-state]  connecting|connected|reconnecting|disconnected
//     (reconnecting also while the socket is up but the server's upstream feed is
//     down, as its `upstream_status` messages say)
//   #connection-status[data-upstream-state]    the server's last upstream_status
//   #dashboard[data-session]                   "ended" once the login session ended
//   #dashboard[data-view]                      cards|table
//   #dashboard[data-stale]                     "true" while prices are not live
//   #subscribed-count[data-subscribed-count]   symbols the server confirmed
//   .price-card[data-symbol], #price-table-body tr[data-symbol]  one per symbol
//     [data-last-price]   latest last_price ("" when none yet)
//     [data-previous-close] the reference previous close ("" when unknown)
//     [data-direction]    up|down|flat: last price vs the previous close
//     [data-update-count] price_update messages received for the symbol, duplicates
//                         not counted (cards)
//     [data-history-length] points in the sparkline history (max 100) (cards)
//     [data-history-source] "server" once the history endpoint's trades were drawn
//     [data-seqs]         the seq of each sparkline point, oldest first, space
//                         separated ("-" for a point without one) (cards)
//     [data-last-seq]     seq of the last update received ("" none yet) (cards)
//     [data-epoch]        the epoch those seqs belong to ("" unknown) (cards)
//     [data-recovered-updates] replayed updates (`recovered: true`) received
//     [data-duplicates]   updates dropped as already seen (seq not newer)
//     [data-gap-fills]    seq gaps filled from the history endpoint
//     [data-resets]       times the line restarted: not recovered, new epoch
//     [data-trend]        up|down|flat: the sparkline's last point vs its first
//     [data-stale]        "true" while the price is not live
//   #dashboard[data-update-count]              price_update messages in total
//   #dashboard[data-recovered], [data-not-recovered]  symbols the server did and
//     did not recover after reconnects, in total (from the subscribe acks)
//   #price-table-body tr [data-field=day_high|day_low|day_volume]  the UTC day's
//     statistics from its bars ("—" while bars are off or before the first trade)
//   #chart-dialog (only when the server streams bars): see chart.js
//   #error-banner, #session-banner, #undo-toast (hidden unless shown)
//   #add-symbol-feedback                       result of the last action

import { AlertsPanel } from "./alerts.js";
import { ChartDialog } from "./chart.js";
import { BarStream, Intraday } from "./intraday.js";
import { States, sameHostWebSocketUrl } from "./price-stream.js";

const HISTORY_LENGTH = 100;
const HISTORY_PAGE_MAX = 1000; // the history endpoint's largest `limit`
const SPARK_WIDTH = 100;
const SPARK_HEIGHT = 32;
const UNDO_MS = 8000;
const SESSION_CHECK_MS = 60000;
const RESORT_MS = 1000;

const STATUS_TEXT = {
  [States.CONNECTING]: "Connecting…",
  [States.CONNECTED]: "Connected",
  [States.RECONNECTING]: "Reconnecting…",
  [States.DISCONNECTED]: "Disconnected",
};

export const EMPTY = "—";

function isNumber(value) {
  return value !== null && value !== undefined && value !== "" && !Number.isNaN(Number(value));
}

export function formatPrice(value) {
  if (!isNumber(value)) return EMPTY;
  const digits = Math.abs(value) < 10 ? 4 : 2;
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function formatSize(value) {
  if (value === null || value === undefined) return EMPTY;
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 8 });
}

/** Signed like the server's format_change: +1.23, +0.45%; an amount has the
 * precision of its price (four decimals below 10, like formatPrice). */
export function formatChange(value, percent = false, price = null) {
  if (!isNumber(value)) return EMPTY;
  const v = Number(value);
  const digits = !percent && isNumber(price) && Math.abs(Number(price)) < 10 ? 4 : 2;
  const text = Math.abs(v).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  const sign = v < 0 ? "-" : "+";
  return `${sign}${text}${percent ? "%" : ""}`;
}

/** Change and % change since the previous close; nulls when either is unknown. */
export function dayChange(last, previousClose) {
  if (!isNumber(last) || !isNumber(previousClose) || Number(previousClose) === 0) {
    return { change: null, pct: null, direction: "flat" };
  }
  const change = Number(last) - Number(previousClose);
  const pct = (change / Number(previousClose)) * 100;
  const direction = change > 0 ? "up" : change < 0 ? "down" : "flat";
  return { change, pct, direction };
}

/** Direction of a line: its last point against its first (not the last tick). */
export function sparklineDirection(values) {
  if (values.length < 2) return "flat";
  const first = values[0];
  const last = values[values.length - 1];
  return last > first ? "up" : last < first ? "down" : "flat";
}

const CLOCK = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

/** Every time on the page: the browser's time zone, 24-hour HH:MM:SS. */
export function formatClock(date) {
  const when = date instanceof Date ? date : new Date(date);
  return Number.isNaN(when.getTime()) ? EMPTY : CLOCK.format(when);
}

/** SVG polyline points for the values, scaled to the sparkline's viewBox. */
export function sparklinePoints(values) {
  if (values.length < 2) return "";
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  const step = SPARK_WIDTH / (values.length - 1);
  return values
    .map((v, i) => {
      const x = i * step;
      const y = SPARK_HEIGHT - 2 - ((v - min) / span) * (SPARK_HEIGHT - 4);
      return `${x.toFixed(2)},${y.toFixed(2)}`;
    })
    .join(" ");
}

/** Two lists of sparkline points ({price, seq}) as one, oldest first: one point
 * per seq, ordered by seq; points without a seq (the server-rendered seed) first. */
export function mergeBySeq(a, b) {
  const unnumbered = [];
  const bySeq = new Map();
  for (const point of [...a, ...b]) {
    if (point.seq === null || point.seq === undefined) unnumbered.push(point);
    else if (!bySeq.has(point.seq)) bySeq.set(point.seq, point);
  }
  return [...unnumbered, ...[...bySeq.values()].sort((x, y) => x.seq - y.seq)];
}

/** A history update that is a sparkline point: a valid trade, not a snapshot. */
function isTradePoint(update) {
  return update.data_type === "T" && isNumber(update.last_price) && !update.snapshot;
}

/** What a person should read for a failed request (never "Failed to fetch"). */
export function describeError(err) {
  if (err instanceof SessionEnded) return err.message;
  if (err instanceof TypeError) {
    return "the server cannot be reached right now. Check your connection; prices come back on their own when it returns.";
  }
  return err && err.message ? err.message : "something went wrong. Try again.";
}

/** A server `error` message in words (codes from PROTOCOL.md and the realtime work). */
export function describeServerError({ message, code }) {
  const text = message || "The server reported an error.";
  if (code === "unknown_symbol") {
    return `${text} Check the spelling, or remove it from the list.`;
  }
  if (code === "upstream_refused") {
    return `The market data provider refused: ${text}. These symbols get no prices until that changes.`;
  }
  return text;
}

/** The watchlist symbols an error is about: its `symbols` field, else the ones its
 * text names (the unknown_symbol message lists them in words). */
export function symbolsNamed(detail, known) {
  if (Array.isArray(detail.symbols)) return detail.symbols;
  if (detail.symbol) return [detail.symbol];
  const text = detail.message || "";
  return known.filter((symbol) => {
    const escaped = symbol.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return new RegExp(`(^|[^A-Z0-9.^=-])${escaped}($|[^A-Z0-9.^=-])`).test(text);
  });
}

class SessionEnded extends Error {
  constructor() {
    super("your session ended. Log in again to keep editing your watchlists.");
  }
}

const SORT_VALUE = {
  symbol: (s) => s.symbol,
  name: (s) => s.name || "",
  last: (s) => s.last.last_price,
  change: (s) => dayChange(s.last.last_price, s.previousClose).change,
  change_pct: (s) => dayChange(s.last.last_price, s.previousClose).pct,
  bid: (s) => s.last.bid_price,
  ask: (s) => s.last.ask_price,
  time: (s) => s.last.timestamp,
  day_high: (s) => s.day?.high,
  day_low: (s) => s.day?.low,
  day_volume: (s) => s.day?.volume,
};

/** Compare two symbol states for the table; unknown values sort last either way. */
export function compareStates(a, b, key, dir) {
  const va = SORT_VALUE[key](a);
  const vb = SORT_VALUE[key](b);
  const missingA = va === null || va === undefined || va === "";
  const missingB = vb === null || vb === undefined || vb === "";
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
  const order = typeof va === "string" ? va.localeCompare(vb) : Number(va) - Number(vb);
  return dir === "desc" ? -order : order;
}

const ROW_CELLS = [
  "name",
  "last_price",
  "change",
  "change_pct",
  "bid_price",
  "ask_price",
  "time",
  "day_high",
  "day_low",
  "day_volume",
];

class Dashboard {
  constructor(root) {
    this.root = root;
    this.$ = (selector) => root.querySelector(selector);
    this.grid = this.$("#price-grid");
    this.tableWrap = this.$("#price-table-wrap");
    this.tbody = this.$("#price-table-body");
    this.empty = this.$("#empty-watchlist");
    this.status = this.$("#connection-status");
    this.statusText = this.status.querySelector(".status-text");
    this.reconnectButton = this.$("#reconnect-now");
    this.staleNote = this.$("#stale-note");
    this.count = this.$("#subscribed-count");
    this.symbolList = this.$("#subscribed-symbols");
    this.banner = this.$("#error-banner");
    this.sessionBanner = this.$("#session-banner");
    this.addForm = this.$("#add-symbol-form");
    this.feedback = this.$("#add-symbol-feedback");
    this.toast = this.$("#undo-toast");
    this.datalist = this.$("#symbol-suggestions");
    this.csrf = this.addForm.querySelector("[name=csrfmiddlewaretoken]").value;
    this.watchlistId = Number(root.dataset.watchlistId);
    this.cards = new Map(); // symbol -> state (see registerCard)
    this.pending = new Set(); // symbols to render at the next frame
    this.frame = 0;
    this.totalUpdates = 0;
    this.recoveredSymbols = 0;
    this.notRecoveredSymbols = 0;
    this.staleSince = null;
    this.sessionOver = false;
    this.view = root.dataset.view === "table" ? "table" : "cards";
    this.sort = { key: root.dataset.sortKey || "", dir: root.dataset.sortDir || "asc" };
    this.lastSort = 0;

    this.grid.querySelectorAll(".price-card").forEach((el) => this.registerCard(el));
    this.root.querySelectorAll("time[datetime]").forEach((t) => {
      t.textContent = formatClock(t.dateTime);
    });
    this.applySort();
    this.setView(this.view, { save: false });

    const pingInterval = Number(root.dataset.pingInterval) || 30000;
    // BarStream is PriceStream plus `bar` events (intraday.js).
    this.stream = new BarStream(sameHostWebSocketUrl(root.dataset.wsPath), {
      pingInterval,
    });
    this.setUpBars();
    this.socketStatus = { state: States.CONNECTING };
    this.upstreamStatus = "connected";
    this.everConnected = false;
    this.stream.addEventListener("state", (e) => this.onState(e.detail));
    this.stream.addEventListener("upstream", (e) => {
      this.upstreamStatus = e.detail.status;
      this.renderStatus();
    });
    this.stream.addEventListener("subscriptions", (e) => this.renderSubscriptions(e.detail));
    this.stream.addEventListener("price", (e) => this.queue(e.detail));
    this.stream.addEventListener("duplicate", (e) => this.onDuplicate(e.detail));
    this.stream.addEventListener("gap", (e) => this.onGap(e.detail));
    this.stream.addEventListener("reset", (e) => {
      const state = this.cards.get(e.detail.symbol);
      if (state) this.resetCard(state, e.detail.epoch);
    });
    this.stream.addEventListener("recovery", (e) => this.onRecovery(e.detail));
    this.stream.addEventListener("servererror", (e) => this.onServerError(e.detail));
    this.stream.subscribe([...this.cards.keys()]);

    this.wireControls();
    this.openChannel();

    // A page restored from the back/forward cache needs its socket back.
    window.addEventListener("pagehide", () => this.stream.stop());
    window.addEventListener("pageshow", (e) => {
      if (e.persisted && !this.sessionOver) this.stream.start();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.checkSession();
    });
    this.sessionTimer = setInterval(() => this.checkSession(), SESSION_CHECK_MS);
    this.stream.start();
    this.loadReferences([...this.cards.keys()]);
    this.loadHistory([...this.cards.keys()]);
    this.detectSimulator();
  }

  /** Day statistics and the chart, when the server streams bars (it says which
   * intervals in data-bar-intervals; none: no chart button, "—" columns). */
  setUpBars() {
    const intervals = (this.root.dataset.barIntervals || "").split(",").filter(Boolean);
    const dialog = this.$("#chart-dialog");
    if (!intervals.length || !this.root.dataset.barsUrl) return;
    this.intraday = new Intraday(this.stream, { barsUrl: this.root.dataset.barsUrl, intervals });
    this.dayPending = new Set();
    this.intraday.addEventListener("change", ({ detail }) => {
      if (detail.interval !== this.intraday.dayInterval || !this.cards.has(detail.symbol)) return;
      this.dayPending.add(detail.symbol);
      if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    });
    if (dialog) {
      this.chart = new ChartDialog(dialog, this.intraday, {
        libraryUrl: this.root.dataset.chartLibrary,
        intervals,
      });
    }
    for (const state of this.cards.values()) this.trackBars(state);
  }

  trackBars(state) {
    if (!this.intraday) return;
    if (this.intraday.dayInterval) this.intraday.track(state.symbol, this.intraday.dayInterval);
    const button = state.el.querySelector(".chart-btn");
    if (button && this.chart) button.hidden = false;
  }

  wireControls() {
    this.addForm.addEventListener("submit", (e) => this.onAdd(e));
    this.grid.addEventListener("submit", (e) => {
      const form = e.target.closest(".remove-form");
      if (!form) return;
      e.preventDefault();
      this.removeSymbol(form.elements.symbol.value, form.querySelector("button"));
    });
    this.grid.addEventListener("click", (e) => {
      const chart = e.target.closest(".chart-btn");
      if (chart && this.chart) this.chart.open(chart.closest("[data-symbol]").dataset.symbol);
      const button = e.target.closest(".move-btn");
      if (!button) return;
      const symbol = button.closest("[data-symbol]").dataset.symbol;
      this.moveSymbol(symbol, button.dataset.move);
    });
    this.tbody.addEventListener("click", (e) => {
      const button = e.target.closest(".remove-btn");
      if (button) this.removeSymbol(button.closest("tr").dataset.symbol, button);
    });
    this.root.querySelectorAll(".sort-button").forEach((button) =>
      button.addEventListener("click", () => this.onSort(button.dataset.sortKey)),
    );
    this.root.querySelectorAll(".view-form button[data-view]").forEach((button) =>
      button.addEventListener("click", (e) => {
        e.preventDefault();
        this.setView(button.dataset.view, { save: true });
      }),
    );
    this.reconnectButton.addEventListener("click", () => {
      this.setFeedback("Reconnecting now…");
      this.stream.reconnectNow();
    });
    this.banner.querySelector(".dismiss").addEventListener("click", () => this.hideBanner());
    this.banner.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.hideBanner();
    });
    this.toast.querySelector(".toast-undo").addEventListener("click", () => this.undo());

    let suggestTimer = 0;
    this.addForm.elements.symbol.addEventListener("input", () => {
      clearTimeout(suggestTimer);
      suggestTimer = setTimeout(() => this.suggest(), 150);
    });

    this.$("#watchlist-new-form").addEventListener("submit", (e) => this.onNewList(e));
    this.$("#watchlist-rename-form").addEventListener("submit", (e) => this.onRename(e));
    this.$("#watchlist-delete-form").addEventListener("submit", (e) => this.onDelete(e));
  }

  // --- symbols: cards and table rows share one state ---------------------------------

  registerCard(el) {
    const symbol = el.dataset.symbol;
    const field = (name) => el.querySelector(`[data-field="${name}"]`);
    const num = (v) => (isNumber(v) ? Number(v) : null);
    const state = {
      symbol,
      el,
      name: el.dataset.name || "",
      previousClose: num(el.dataset.previousClose),
      fields: {
        name: field("name"),
        price: field("last_price"),
        changeLine: field("change_line"),
        change: field("change"),
        changePct: field("change_pct"),
        ask: field("ask_price"),
        askSize: field("ask_size"),
        bid: field("bid_price"),
        bidSize: field("bid_size"),
        time: field("time"),
        sparkline: field("sparkline"),
        stale: field("stale"),
      },
      last: {
        last_price: num(el.dataset.lastPrice),
        ask_price: num(el.dataset.askPrice),
        bid_price: num(el.dataset.bidPrice),
        timestamp: num(el.dataset.timestamp),
      },
      history: [],
      seqs: [], // the seq of each history point (null for the server-rendered seed)
      epoch: null, // the epoch of those seqs
      lastSeq: null, // seq of the last update received
      firstSeq: null, // seq of the first update received in this epoch
      generation: 0, // bumped by a reset: answers to older requests are void
      gap: null, // {epoch, after, seq}: a seq gap waiting to be filled
      gapBusy: false,
      counts: { recoveredUpdates: 0, duplicates: 0, gapFills: 0, resets: 0 },
      updates: 0,
      flash: "a",
    };
    // Seed the history with the price the server rendered from its cache.
    if (state.last.last_price !== null) {
      state.history.push(state.last.last_price);
      state.seqs.push(null);
    }
    el.dataset.historyLength = String(state.history.length);
    el.dataset.seqs = state.seqs.map((seq) => seq ?? "-").join(" ");
    state.row = this.buildRow(state);
    this.cards.set(symbol, state);
    this.empty.hidden = this.cards.size > 0;
    this.renderStatic(state);
    this.trackBars(state);
    return state;
  }

  buildRow(state) {
    const row = document.createElement("tr");
    row.dataset.symbol = state.symbol;
    const head = document.createElement("th");
    head.scope = "row";
    head.textContent = state.symbol;
    row.append(head);
    const cells = {};
    for (const name of ROW_CELLS) {
      const cell = document.createElement("td");
      if (name !== "name") cell.className = "num";
      cell.dataset.field = name;
      row.append(cell);
      cells[name] = cell;
    }
    const actions = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove-btn";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", `Remove ${state.symbol}`);
    actions.append(remove);
    row.append(actions);
    state.cells = cells;
    this.tbody.append(row);
    return row;
  }

  forgetCard(symbol) {
    const state = this.cards.get(symbol);
    if (!state) return;
    state.el.remove();
    state.row.remove();
    this.cards.delete(symbol);
    this.pending.delete(symbol);
    this.intraday?.forget(symbol);
    this.empty.hidden = this.cards.size > 0;
  }

  insertCard(html, index) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const el = template.content.firstElementChild;
    const before = this.grid.children[index ?? this.grid.children.length];
    this.grid.insertBefore(el, before || null);
    const state = this.registerCard(el);
    el.querySelectorAll("time[datetime]").forEach((t) => {
      t.textContent = formatClock(t.dateTime);
    });
    this.markStale(state);
    this.stream.subscribe([state.symbol]);
    this.loadReferences([state.symbol]);
    this.loadHistory([state.symbol]);
    return state;
  }

  /** Put cards and (unsorted) rows in the watchlist's order. */
  applyOrder(order) {
    for (const symbol of order) {
      const state = this.cards.get(symbol);
      if (state) this.grid.append(state.el);
    }
    this.applySort();
  }

  // --- price updates: history per message, DOM once per animation frame -----------

  queue(message) {
    const state = this.cards.get(message.symbol);
    if (!state) return; // a late update for a symbol just removed
    state.updates += 1;
    this.totalUpdates += 1;
    // Extension fields of snapshots (reference data): name and previous close.
    if (message.name && !state.name) state.name = message.name;
    if (isNumber(message.previous_close)) state.previousClose = Number(message.previous_close);
    if (typeof message.seq === "number") {
      // The stream knows the epoch (ack, snapshot); points of another epoch are
      // in another sequence space, so the line restarts.
      const { epoch } = this.stream.position(message.symbol);
      if (epoch !== null && state.epoch !== null && epoch !== state.epoch) {
        this.resetCard(state, epoch);
      }
      if (epoch !== null) state.epoch = epoch;
      state.lastSeq = message.seq;
      if (state.firstSeq === null) state.firstSeq = message.seq;
    }
    if (message.recovered) state.counts.recoveredUpdates += 1;
    const price = message.last_price;
    if (price !== null && price !== undefined) {
      const last = state.history[state.history.length - 1];
      // Every trade is a point (replayed ones too, in order); a quote repeats the
      // last trade price and is not. A snapshot (after (re)subscribing) adds a
      // point only if the price moved while we were away.
      const isTrade = message.data_type === "T" && !message.snapshot;
      if (isTrade || state.history.length === 0 || (message.snapshot && price !== last)) {
        this.addPoints(state, [{ price, seq: message.seq ?? null }]);
      }
    }
    state.last = message;
    state.fresh = true;
    this.pending.add(message.symbol);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Add points to the sparkline: appended when newer than every point (live
   * ticks), merged by seq otherwise (history, gap fills); trimmed to the last
   * HISTORY_LENGTH. */
  addPoints(state, points) {
    // Per live tick: the newest numbered point, read from the end, no copy.
    let newest = -Infinity;
    for (let i = state.seqs.length - 1; i >= 0; i -= 1) {
      if (state.seqs[i] !== null) {
        newest = state.seqs[i];
        break;
      }
    }
    if (points.every((p) => p.seq === null || p.seq > newest)) {
      for (const p of points) {
        state.history.push(p.price);
        state.seqs.push(p.seq);
      }
    } else {
      const current = state.history.map((price, i) => ({ price, seq: state.seqs[i] }));
      const merged = mergeBySeq(current, points);
      state.history = merged.map((p) => p.price);
      state.seqs = merged.map((p) => p.seq);
    }
    if (state.history.length > HISTORY_LENGTH) {
      state.history = state.history.slice(-HISTORY_LENGTH);
      state.seqs = state.seqs.slice(-HISTORY_LENGTH);
    }
  }

  /** The sparkline and the card's sequence attributes, from the state. */
  drawSparkline(state) {
    const { el, history, counts } = state;
    state.fields.sparkline.setAttribute("points", sparklinePoints(history));
    el.dataset.historyLength = String(history.length);
    el.dataset.trend = sparklineDirection(history);
    el.dataset.seqs = state.seqs.map((seq) => seq ?? "-").join(" ");
    el.dataset.lastSeq = state.lastSeq ?? "";
    el.dataset.epoch = state.epoch ?? "";
    el.dataset.recoveredUpdates = String(counts.recoveredUpdates);
    el.dataset.duplicates = String(counts.duplicates);
    el.dataset.gapFills = String(counts.gapFills);
    el.dataset.resets = String(counts.resets);
  }

  onDuplicate(message) {
    const state = this.cards.get(message.symbol);
    if (!state) return;
    state.counts.duplicates += 1;
    this.drawSparkline(state);
  }

  onRecovery({ recovered, notRecovered }) {
    this.recoveredSymbols += recovered.length;
    this.notRecoveredSymbols += notRecovered.length;
    this.root.dataset.recovered = String(this.recoveredSymbols);
    this.root.dataset.notRecovered = String(this.notRecoveredSymbols);
  }

  /** The symbol's sequence restarted for us (not recovered, or a new epoch): the
   * line drawn from the old one goes, and the server's history of the new one is
   * fetched. */
  resetCard(state, epoch) {
    state.generation += 1;
    state.history = [];
    state.seqs = [];
    state.epoch = epoch ?? null;
    state.lastSeq = null;
    state.firstSeq = null;
    state.gap = null;
    state.counts.resets += 1;
    delete state.el.dataset.historySource;
    this.drawSparkline(state);
    this.loadHistory([state.symbol]);
  }

  flush() {
    this.frame = 0;
    for (const symbol of this.pending) {
      const state = this.cards.get(symbol);
      if (state) this.renderLive(state);
    }
    this.pending.clear();
    for (const symbol of this.dayPending ?? []) {
      const state = this.cards.get(symbol);
      if (state) this.renderDay(state);
    }
    this.dayPending?.clear();
    this.root.dataset.updateCount = String(this.totalUpdates);
    const now = Date.now();
    if (this.sort.key && this.sort.key !== "symbol" && this.sort.key !== "name" && now - this.lastSort > RESORT_MS) {
      this.applySort();
    }
  }

  /** Name and change: what reference data and the last price give. */
  renderStatic(state) {
    const { el, row, fields, cells } = state;
    const m = state.last;
    const { change, pct, direction } = dayChange(m.last_price, state.previousClose);
    if (fields.name) fields.name.textContent = state.name;
    cells.name.textContent = state.name;
    for (const target of [fields.price, cells.last_price]) {
      target.textContent = formatPrice(m.last_price);
      target.classList.toggle("up", direction === "up");
      target.classList.toggle("down", direction === "down");
    }
    fields.change.textContent = formatChange(change, false, m.last_price);
    fields.changePct.textContent = formatChange(pct, true);
    fields.changeLine.className = `card-change ${direction}`;
    cells.change.textContent = formatChange(change, false, m.last_price);
    cells.change_pct.textContent = formatChange(pct, true);
    for (const cell of [cells.change, cells.change_pct]) {
      cell.classList.toggle("up", direction === "up");
      cell.classList.toggle("down", direction === "down");
    }
    cells.bid_price.textContent = formatPrice(m.bid_price);
    cells.ask_price.textContent = formatPrice(m.ask_price);
    cells.time.textContent = isNumber(m.timestamp) ? formatClock(Number(m.timestamp)) : EMPTY;
    for (const target of [el, row]) {
      target.dataset.lastPrice = m.last_price ?? "";
      target.dataset.previousClose = state.previousClose ?? "";
      target.dataset.direction = direction;
    }
    if (state.name) el.setAttribute("aria-label", `${state.symbol} (${state.name})`);
    this.renderDay(state);
  }

  /** The table's day high, low and volume, from the day's bars (intraday.js). */
  renderDay(state) {
    state.day = this.intraday?.dayStats(state.symbol) ?? null;
    const { cells, day } = state;
    cells.day_high.textContent = formatPrice(day?.high);
    cells.day_low.textContent = formatPrice(day?.low);
    cells.day_volume.textContent = formatSize(day?.volume);
  }

  renderLive(state) {
    const { el, fields } = state;
    const m = state.last;
    this.renderStatic(state);
    fields.ask.textContent = formatPrice(m.ask_price);
    fields.askSize.textContent = formatSize(m.ask_size);
    fields.bid.textContent = formatPrice(m.bid_price);
    fields.bidSize.textContent = formatSize(m.bid_size);
    const when = new Date(m.timestamp);
    if (!Number.isNaN(when.getTime())) {
      fields.time.textContent = formatClock(when);
      fields.time.dateTime = when.toISOString();
    }
    this.drawSparkline(state);
    // A short flash: switching between two identical animations restarts it
    // without forcing a layout (CSS; none under prefers-reduced-motion).
    state.flash = state.flash === "a" ? "b" : "a";
    fields.price.dataset.flash = state.flash;
    state.cells.last_price.dataset.flash = state.flash;
    el.dataset.updateCount = String(state.updates);
    if (this.staleSince === null) this.clearStale(state);
  }

  /** Names and previous closes from the reference endpoint, all in parallel. */
  async loadReferences(symbols) {
    const base = this.root.dataset.referenceUrl;
    if (!base) return;
    await Promise.all(
      symbols.map(async (symbol) => {
        try {
          const response = await fetch(`${base}${encodeURIComponent(symbol)}`, {
            headers: { Accept: "application/json" },
            credentials: "same-origin",
          });
          if (!response.ok) return; // 404 unknown, or not built yet: keep "—"
          const ref = await response.json();
          const state = this.cards.get(symbol);
          if (!state) return;
          if (ref.name) state.name = ref.name;
          if (isNumber(ref.previous_close)) state.previousClose = Number(ref.previous_close);
          if (ref.simulated) this.showSimulated();
          this.renderStatic(state);
        } catch {
          // Reference data is optional; the change shows "—" without it.
        }
      }),
    );
  }

  /** GET the history endpoint; its JSON, or null (404: no data yet, or no such
   * endpoint; a network error). */
  async fetchHistory(symbol, query) {
    const base = this.root.dataset.historyUrl;
    if (!base) return null;
    try {
      const url = `${base}${encodeURIComponent(symbol)}?${query}`;
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return null;
      const page = await response.json();
      return Array.isArray(page.updates) ? page : null;
    } catch {
      // History is a nicety: the line goes on from the live ticks without it.
      return null;
    }
  }

  /** Whether an answer about `state` is still wanted: the card is still shown,
   * was not reset since the request, and the page is of the card's epoch. */
  current(state, generation, epoch) {
    if (this.cards.get(state.symbol) !== state || state.generation !== generation) {
      return false;
    }
    const known = this.stream.position(state.symbol).epoch ?? state.epoch;
    return !known || !epoch || known === epoch;
  }

  /** The server's recent trades (PROTOCOL.md history endpoint) as the sparkline's
   * start, so a reload keeps the line; live points are merged with them by seq.
   * Live ticks that began after a hole in the history get the hole filled. */
  async loadHistory(symbols) {
    await Promise.all(
      symbols.map(async (symbol) => {
        const state = this.cards.get(symbol);
        if (!state) return;
        const generation = state.generation;
        const page = await this.fetchHistory(symbol, "limit=300");
        if (!page || !this.current(state, generation, page.epoch)) return;
        const trades = page.updates.filter(isTradePoint);
        if (!trades.length) return;
        const points = trades.map((u) => ({ price: Number(u.last_price), seq: u.seq ?? null }));
        // The server-rendered seed (no seq) gives way to the real trades.
        const live = state.seqs.flatMap((seq, i) => (seq === null ? [] : [i]));
        state.history = live.map((i) => state.history[i]);
        state.seqs = live.map((i) => state.seqs[i]);
        this.addPoints(state, points);
        if (typeof page.epoch === "string") state.epoch = page.epoch;
        state.el.dataset.historySource = "server";
        this.drawSparkline(state);
        const seqs = page.updates.map((u) => u.seq).filter((seq) => typeof seq === "number");
        const newest = seqs.length ? Math.max(...seqs) : null;
        if (newest !== null && state.firstSeq !== null && state.firstSeq > newest + 1) {
          this.onGap({ symbol, epoch: state.epoch, after: newest, seq: state.firstSeq });
        }
      }),
    );
  }

  /** A seq gap announced by the stream (or found by loadHistory): filled from the
   * history endpoint, one request at a time per symbol, gaps that arrive
   * meanwhile joined into the next one. */
  onGap({ symbol, epoch, after, seq }) {
    const state = this.cards.get(symbol);
    if (!state || !this.root.dataset.historyUrl) return;
    const pending = state.gap;
    if (pending && pending.epoch === epoch) {
      pending.after = Math.min(pending.after, after);
      pending.seq = Math.max(pending.seq, seq);
    } else {
      state.gap = { epoch, after, seq };
    }
    if (!state.gapBusy) this.fillGaps(state);
  }

  async fillGaps(state) {
    state.gapBusy = true;
    try {
      while (state.gap && this.cards.get(state.symbol) === state) {
        const gap = state.gap;
        state.gap = null;
        await this.fillGap(state, gap);
      }
    } finally {
      state.gapBusy = false;
    }
  }

  /** The trades with a seq in (after, seq) merged into the line: at most the
   * newest HISTORY_PAGE_MAX updates of the gap, far more than the line holds. */
  async fillGap(state, { epoch, after, seq }) {
    const generation = state.generation;
    const from = Math.max(after, seq - 1 - HISTORY_PAGE_MAX);
    const limit = Math.min(HISTORY_PAGE_MAX, seq - from - 1);
    if (limit < 1) return;
    const page = await this.fetchHistory(state.symbol, `after_seq=${from}&limit=${limit}`);
    if (!page || !this.current(state, generation, page.epoch)) return;
    if (epoch && page.epoch && page.epoch !== epoch) return;
    const points = page.updates
      .filter((u) => isTradePoint(u) && u.seq > after && u.seq < seq)
      .map((u) => ({ price: Number(u.last_price), seq: u.seq }));
    this.addPoints(state, points);
    state.counts.gapFills += 1;
    this.drawSparkline(state);
  }

  async detectSimulator() {
    if (this.root.dataset.simulated === "true") return;
    try {
      const response = await fetch(this.root.dataset.healthUrl, {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      const health = await response.json();
      if (health.source === "simulator") this.showSimulated();
    } catch {
      // No health answer: keep what the server rendered.
    }
  }

  showSimulated() {
    this.root.dataset.simulated = "true";
    this.$("#simulated-badge").hidden = false;
  }

  // --- connection, staleness and the session ----------------------------------------

  onState(detail) {
    const wasConnected = this.socketStatus.state === States.CONNECTED;
    this.socketStatus = detail;
    // A new socket starts from a clean slate; the server re-announces an outage.
    if (detail.state !== States.CONNECTED) this.upstreamStatus = "connected";
    if (detail.state === States.CONNECTED && !wasConnected) {
      // With anonymous sockets allowed, a socket opening says nothing about the
      // session: ask the server after every reconnect.
      if (this.everConnected) this.checkSession();
      this.everConnected = true;
    }
    this.renderStatus();
  }

  renderStatus() {
    if (this.sessionOver) return;
    const { delay, attempt } = this.socketStatus;
    let state = this.socketStatus.state;
    let text = STATUS_TEXT[state] || state;
    let title =
      state === States.CONNECTED || delay === undefined
        ? ""
        : `Retry ${attempt} in ${(delay / 1000).toFixed(1)} s`;
    const socketDown = state === States.RECONNECTING || state === States.DISCONNECTED;
    if (state === States.CONNECTED && this.upstreamStatus !== "connected") {
      state = States.RECONNECTING;
      text = "Price feed reconnecting…";
      title = `The server's market data feed is ${this.upstreamStatus}`;
    }
    this.status.dataset.connectionState = state;
    this.status.dataset.upstreamState = this.upstreamStatus;
    this.status.className = `status ${state}`;
    this.statusText.textContent = text;
    this.status.title = title;
    this.reconnectButton.hidden = !socketDown;
    if (state === States.RECONNECTING || state === States.DISCONNECTED) {
      this.setStale(
        socketDown
          ? "the connection to the server was lost. Retrying automatically."
          : "the server lost its market data feed. It is reconnecting.",
      );
    } else if (state === States.CONNECTED) {
      this.setLive();
    }
  }

  setStale(reason) {
    if (this.staleSince === null) this.staleSince = new Date();
    const since = formatClock(this.staleSince);
    this.root.dataset.stale = "true";
    this.staleNote.textContent = `Prices are not live since ${since}: ${reason}`;
    this.staleNote.hidden = false;
    for (const state of this.cards.values()) this.markStale(state);
  }

  markStale(state) {
    if (this.staleSince === null) return;
    const since = formatClock(this.staleSince);
    for (const target of [state.el, state.row]) target.dataset.stale = "true";
    state.fields.stale.textContent = `Stale since ${since}`;
    state.fields.stale.hidden = false;
  }

  clearStale(state) {
    for (const target of [state.el, state.row]) delete target.dataset.stale;
    state.fields.stale.hidden = true;
  }

  setLive() {
    if (this.staleSince === null) return;
    this.staleSince = null;
    delete this.root.dataset.stale;
    this.staleNote.hidden = true;
    for (const state of this.cards.values()) this.clearStale(state);
  }

  async checkSession() {
    if (this.sessionOver) return;
    try {
      const response = await fetch(this.root.dataset.sessionUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) this.sessionEnded();
    } catch {
      // Unreachable server: the socket's state already says so.
    }
  }

  sessionEnded() {
    if (this.sessionOver) return;
    this.sessionOver = true;
    this.root.dataset.session = "ended";
    this.sessionBanner.hidden = false;
    this.stream.stop();
    clearInterval(this.sessionTimer);
    this.status.dataset.connectionState = "disconnected";
    this.status.className = "status disconnected";
    this.statusText.textContent = "Session ended";
    this.status.title = "Log in again to see live prices";
    this.reconnectButton.hidden = true;
    if (this.staleSince === null) this.staleSince = new Date();
    this.root.dataset.stale = "true";
    this.staleNote.textContent = `Prices are not live since ${formatClock(this.staleSince)}: your session ended.`;
    this.staleNote.hidden = false;
    for (const state of this.cards.values()) this.markStale(state);
    this.root
      .querySelectorAll("#add-symbol-form button, .move-btn, .remove-btn, .manage-forms button")
      .forEach((b) => {
        b.disabled = true;
      });
    this.$("#session-login-link").focus();
  }

  renderSubscriptions({ symbols, total }) {
    this.count.textContent = String(total);
    this.count.dataset.subscribedCount = String(total);
    this.symbolList.textContent = symbols.join(", ");
  }

  onServerError(detail) {
    this.showBanner(describeServerError(detail));
    const labels = {
      unknown_symbol: "Unknown symbol: no prices",
      upstream_refused: "Refused by the data provider: no prices",
    };
    const label = labels[detail.code];
    if (!label) return;
    for (const symbol of symbolsNamed(detail, [...this.cards.keys()])) {
      const state = this.cards.get(symbol);
      state.el.dataset.refused = detail.code;
      state.fields.stale.textContent = label;
      state.fields.stale.hidden = false;
    }
  }

  showBanner(message) {
    this.banner.querySelector(".error-text").textContent = `⚠ ${message}`;
    this.banner.hidden = false;
  }

  hideBanner() {
    const hadFocus = this.banner.contains(document.activeElement);
    this.banner.hidden = true;
    if (hadFocus) this.addForm.elements.symbol.focus();
  }

  setFeedback(message, isError = false) {
    this.feedback.textContent = message;
    this.feedback.classList.toggle("is-error", isError);
    const input = this.addForm.elements.symbol;
    if (isError) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  // --- requests -----------------------------------------------------------------------

  async post(url, fields) {
    const body = fields instanceof FormData ? fields : new FormData();
    if (!(fields instanceof FormData)) {
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined && value !== null) body.append(key, value);
      }
    }
    if (!body.has("csrfmiddlewaretoken")) body.append("csrfmiddlewaretoken", this.csrf);
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const loginPage = response.redirected && new URL(response.url).pathname.startsWith("/accounts/login");
    if (response.status === 401 || loginPage) {
      this.sessionEnded();
      throw new SessionEnded();
    }
    const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
    if (!isJson) {
      if (response.status === 403) {
        throw new Error("the server refused the request (the page is out of date). Reload the page.");
      }
      throw new Error(`the server answered unexpectedly (HTTP ${response.status}). Reload the page and try again.`);
    }
    return { response, data: await response.json() };
  }

  // --- add / remove / undo / move -------------------------------------------------------

  async onAdd(event) {
    event.preventDefault();
    const input = this.addForm.elements.symbol;
    const raw = input.value.trim();
    if (!raw) {
      this.setFeedback("Enter a symbol, for example NVDA.", true);
      input.focus();
      return;
    }
    const button = this.addForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const ok = await this.addSymbol(raw);
      if (ok) input.value = "";
      input.focus();
    } finally {
      button.disabled = this.sessionOver;
    }
  }

  async addSymbol(raw, index = null) {
    try {
      const { response, data } = await this.post(this.root.dataset.addUrl, {
        symbol: raw,
        watchlist: this.watchlistId,
        index,
      });
      if (!response.ok) {
        this.setFeedback(data.error || `Could not add ${raw}.`, true);
        return false;
      }
      if (data.created && data.html && !this.cards.has(data.symbol)) {
        const position = data.order ? data.order.indexOf(data.symbol) : null;
        this.insertCard(data.html, position);
        if (data.order) this.applyOrder(data.order);
        this.broadcast({ kind: "added", symbol: data.symbol, html: data.html, order: data.order });
      }
      this.setFeedback(data.message);
      return true;
    } catch (err) {
      this.setFeedback(`Could not add ${raw}: ${describeError(err)}`, true);
      return false;
    }
  }

  async removeSymbol(symbol, button) {
    if (button) button.disabled = true;
    const order = [...this.grid.children].map((el) => el.dataset.symbol);
    const index = order.indexOf(symbol);
    try {
      const { response, data } = await this.post(this.root.dataset.removeUrl, {
        symbol,
        watchlist: this.watchlistId,
      });
      if (!response.ok) {
        this.setFeedback(data.error || `Could not remove ${symbol}.`, true);
        if (button) button.disabled = false;
        return;
      }
      // Keep keyboard focus in the list: the next symbol's remove button, else the
      // previous one's, else the symbol input.
      const inTable = button && button.closest("tr");
      const state = this.cards.get(symbol);
      const host = state && (inTable ? state.row : state.el);
      const sibling = host && (host.nextElementSibling || host.previousElementSibling);
      this.forgetCard(symbol);
      this.stream.unsubscribe([symbol]);
      this.setFeedback(data.message);
      if (data.removed) {
        this.showUndo(symbol, index);
        this.broadcast({ kind: "removed", symbol });
      }
      (sibling?.querySelector(".remove-btn") || this.addForm.elements.symbol).focus();
    } catch (err) {
      this.setFeedback(`Could not remove ${symbol}: ${describeError(err)}`, true);
      if (button) button.disabled = this.sessionOver;
    }
  }

  showUndo(symbol, index) {
    clearTimeout(this.undoTimer);
    this.undoItem = { symbol, index };
    this.toast.querySelector(".toast-text").textContent = `Removed ${symbol}.`;
    this.toast.querySelector(".toast-undo").setAttribute("aria-label", `Undo: put ${symbol} back`);
    this.toast.hidden = false;
    this.undoTimer = setTimeout(() => this.hideUndo(), UNDO_MS);
  }

  hideUndo() {
    clearTimeout(this.undoTimer);
    const hadFocus = this.toast.contains(document.activeElement);
    this.toast.hidden = true;
    this.undoItem = null;
    if (hadFocus) this.addForm.elements.symbol.focus();
  }

  async undo() {
    const item = this.undoItem;
    this.hideUndo();
    if (!item) return;
    await this.addSymbol(item.symbol, item.index >= 0 ? item.index : null);
  }

  async moveSymbol(symbol, direction) {
    try {
      const { response, data } = await this.post(this.root.dataset.moveUrl, {
        symbol,
        direction,
        watchlist: this.watchlistId,
      });
      if (!response.ok) {
        this.setFeedback(data.error || `Could not move ${symbol}.`, true);
        return;
      }
      this.applyOrder(data.order);
      this.setFeedback(data.message);
      this.broadcast({ kind: "order", order: data.order });
      this.cards.get(symbol)?.el.querySelector(`.move-btn[data-move="${direction}"]`)?.focus();
    } catch (err) {
      this.setFeedback(`Could not move ${symbol}: ${describeError(err)}`, true);
    }
  }

  // --- view and sorting (kept per user on the server) -------------------------------------

  setView(view, { save }) {
    this.view = view === "table" ? "table" : "cards";
    this.root.dataset.view = this.view;
    this.grid.hidden = this.view !== "cards";
    this.tableWrap.hidden = this.view !== "table";
    this.root.querySelectorAll(".view-form button[data-view]").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.view === this.view));
    });
    if (save) {
      this.savePreferences({ view: this.view });
      this.broadcast({ kind: "prefs", view: this.view, sort: this.sort });
    }
  }

  onSort(key) {
    // Ascending, then descending, then back to the watchlist's own order.
    if (this.sort.key !== key) this.sort = { key, dir: "asc" };
    else if (this.sort.dir === "asc") this.sort = { key, dir: "desc" };
    else this.sort = { key: "", dir: "asc" };
    this.applySort();
    this.savePreferences({ sort_key: this.sort.key, sort_dir: this.sort.dir });
    this.broadcast({ kind: "prefs", view: this.view, sort: this.sort });
  }

  applySort() {
    this.lastSort = Date.now();
    const states = [...this.grid.children]
      .map((el) => this.cards.get(el.dataset.symbol))
      .filter(Boolean);
    const { key, dir } = this.sort;
    if (key && SORT_VALUE[key]) {
      states.sort((a, b) => compareStates(a, b, key, dir));
    }
    const current = [...this.tbody.children];
    if (states.some((s, i) => current[i] !== s.row)) {
      for (const state of states) this.tbody.append(state.row);
    }
    this.root.querySelectorAll("th[data-sort-key]").forEach((th) => {
      const sorted = th.dataset.sortKey === key;
      th.setAttribute(
        "aria-sort",
        sorted ? (dir === "desc" ? "descending" : "ascending") : "none",
      );
    });
    this.root.dataset.sortKey = key;
    this.root.dataset.sortDir = dir;
  }

  async savePreferences(fields) {
    try {
      const { response, data } = await this.post(this.root.dataset.preferencesUrl, fields);
      if (!response.ok) this.setFeedback(data.error || "Could not save the layout.", true);
    } catch (err) {
      this.setFeedback(`Could not save the layout: ${describeError(err)}`, true);
    }
  }

  // --- symbol suggestions ------------------------------------------------------------------

  async suggest() {
    const query = this.addForm.elements.symbol.value.trim();
    if (!query || this.sessionOver) {
      this.datalist.replaceChildren();
      return;
    }
    try {
      const url = `${this.root.dataset.symbolsUrl}?q=${encodeURIComponent(query)}`;
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const { results } = await response.json();
      this.datalist.replaceChildren(
        ...results.map(({ symbol, name }) => {
          const option = document.createElement("option");
          option.value = symbol;
          option.label = name ? `${symbol} — ${name}` : symbol;
          option.textContent = option.label;
          return option;
        }),
      );
    } catch {
      // Suggestions are a convenience; typing a symbol still works.
    }
  }

  // --- watchlists ----------------------------------------------------------------------------

  async onNewList(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const { response, data } = await this.post(form.action, new FormData(form));
      if (!response.ok) {
        this.setFeedback(data.error || "Could not create the list.", true);
        return;
      }
      // The response has the created list only: other tabs add it to theirs.
      this.broadcast({ kind: "watchlist_created", created: { id: data.id, name: data.name, url: data.url } });
      window.location.assign(data.url);
    } catch (err) {
      this.setFeedback(`Could not create the list: ${describeError(err)}`, true);
    }
  }

  async onRename(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const { response, data } = await this.post(form.action, new FormData(form));
      if (!response.ok) {
        this.setFeedback(data.error || "Could not rename the list.", true);
        return;
      }
      this.renderWatchlists(data.watchlists);
      this.setFeedback(data.message);
      this.broadcast({ kind: "watchlists", watchlists: data.watchlists });
    } catch (err) {
      this.setFeedback(`Could not rename the list: ${describeError(err)}`, true);
    }
  }

  async onDelete(event) {
    event.preventDefault();
    const form = event.target;
    const name = form.dataset.name;
    if (!window.confirm(`Delete the watchlist “${name}” and its ${this.cards.size} symbols?`)) return;
    try {
      const { response, data } = await this.post(form.action, new FormData(form));
      if (!response.ok) {
        this.setFeedback(data.error || "Could not delete the list.", true);
        return;
      }
      this.broadcast({ kind: "watchlists", watchlists: data.watchlists, deleted: data.id });
      window.location.assign(data.url);
    } catch (err) {
      this.setFeedback(`Could not delete the list: ${describeError(err)}`, true);
    }
  }

  shownWatchlists() {
    return [...this.$("#watchlist-tabs").querySelectorAll("a[data-watchlist-id]")].map((a) => ({
      id: Number(a.dataset.watchlistId),
      name: a.textContent,
      url: a.getAttribute("href"),
    }));
  }

  renderWatchlists(watchlists) {
    const nav = this.$("#watchlist-tabs");
    nav.replaceChildren(
      ...watchlists.map((wl) => {
        const a = document.createElement("a");
        a.href = wl.url;
        a.dataset.watchlistId = String(wl.id);
        a.textContent = wl.name;
        if (wl.id === this.watchlistId) {
          a.setAttribute("aria-current", "page");
          this.grid.setAttribute("aria-label", wl.name);
          this.$("#watchlist-delete-form").dataset.name = wl.name;
          this.$("#watchlist-delete-form button").textContent = `Delete “${wl.name}”`;
          this.$("label[for=rename-watchlist-name]").textContent = `Rename “${wl.name}” to`;
          this.$("#rename-watchlist-name").value = wl.name;
        }
        return a;
      }),
    );
  }

  // --- other tabs of the same user (BroadcastChannel, same origin) ----------------------------

  openChannel() {
    if (!("BroadcastChannel" in window)) return;
    this.channel = new BroadcastChannel(`fmpsite-dashboard-${this.root.dataset.userId}`);
    this.channel.addEventListener("message", (e) => this.onBroadcast(e.data));
  }

  broadcast(message) {
    if (this.channel) this.channel.postMessage({ ...message, watchlist: this.watchlistId });
  }

  onBroadcast(message) {
    if (this.sessionOver || !message) return;
    if (message.kind === "watchlists") {
      if (message.deleted === this.watchlistId) {
        window.location.assign(this.root.dataset.homeUrl);
        return;
      }
      this.renderWatchlists(message.watchlists);
      return;
    }
    if (message.kind === "watchlist_created") {
      const shown = this.shownWatchlists().filter((wl) => wl.id !== message.created.id);
      this.renderWatchlists([...shown, message.created]);
      return;
    }
    if (message.kind === "prefs") {
      this.sort = message.sort;
      this.applySort();
      this.setView(message.view, { save: false });
      return;
    }
    if (message.watchlist !== this.watchlistId) return;
    if (message.kind === "added" && !this.cards.has(message.symbol)) {
      this.insertCard(message.html, message.order ? message.order.indexOf(message.symbol) : null);
      if (message.order) this.applyOrder(message.order);
    } else if (message.kind === "removed") {
      this.forgetCard(message.symbol);
      this.stream.unsubscribe([message.symbol]);
    } else if (message.kind === "order") {
      this.applyOrder(message.order);
    }
  }
}

const root = document.getElementById("dashboard");
if (root) {
  // A handle for debugging in the console and for browser tests.
  window.fmpsiteDashboard = new Dashboard(root);
  const alerts = document.getElementById("alerts");
  if (alerts) window.fmpsiteAlerts = new AlertsPanel(alerts, window.fmpsiteDashboard);
}
