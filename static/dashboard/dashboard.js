// The dashboard page: cards rendered by the server (dashboard/_price_card.html),
// kept live by one PriceStream. Configuration comes from data- attributes of
// #dashboard (no inline scripts).
//
// DOM hooks (also what the browser tests read):
//   #connection-status[data-connection-state]  connecting|connected|reconnecting|disconnected
//     (reconnecting also while the socket is up but the server's upstream feed is
//     down, as its `upstream_status` messages say)
//   #connection-status[data-upstream-state]    the server's last upstream_status
//   #subscribed-count[data-subscribed-count]   symbols the server confirmed
//   .price-card[data-symbol]                   one per watchlist symbol
//     [data-last-price]   latest last_price ("" when none yet)
//     [data-update-count] price_update messages received for the symbol
//     [data-history-length] points in the sparkline history (max 100)
//     [data-trend]        up|down|flat, last trade vs the one before
//   #dashboard[data-update-count]              price_update messages in total
//   #error-banner (hidden unless a server `error` arrived)
//   #add-symbol-feedback                       result of the last add/remove

import { PriceStream, States, sameHostWebSocketUrl } from "./price-stream.js";

const HISTORY_LENGTH = 100;
const SPARK_WIDTH = 100;
const SPARK_HEIGHT = 32;

const STATUS_TEXT = {
  [States.CONNECTING]: "Connecting…",
  [States.CONNECTED]: "Connected",
  [States.RECONNECTING]: "Reconnecting…",
  [States.DISCONNECTED]: "Disconnected",
};

export function formatPrice(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const digits = Math.abs(value) < 10 ? 4 : 2;
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function formatSize(value) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 8 });
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

class Dashboard {
  constructor(root) {
    this.root = root;
    this.grid = root.querySelector("#price-grid");
    this.empty = root.querySelector("#empty-watchlist");
    this.status = root.querySelector("#connection-status");
    this.statusText = this.status.querySelector(".status-text");
    this.count = root.querySelector("#subscribed-count");
    this.symbolList = root.querySelector("#subscribed-symbols");
    this.banner = root.querySelector("#error-banner");
    this.addForm = root.querySelector("#add-symbol-form");
    this.feedback = root.querySelector("#add-symbol-feedback");
    this.cards = new Map(); // symbol -> {el, fields, history, updates}
    this.pending = new Map(); // symbol -> latest price_update of this frame
    this.frame = 0;
    this.totalUpdates = 0;

    this.grid.querySelectorAll(".price-card").forEach((el) => this.registerCard(el));

    const pingInterval = Number(root.dataset.pingInterval) || 30000;
    this.stream = new PriceStream(sameHostWebSocketUrl(root.dataset.wsPath), {
      pingInterval,
    });
    this.socketStatus = { state: States.CONNECTING };
    this.upstreamStatus = "connected";
    this.stream.addEventListener("state", (e) => {
      this.socketStatus = e.detail;
      // A new socket starts from a clean slate; the server re-announces an outage.
      if (e.detail.state !== States.CONNECTED) this.upstreamStatus = "connected";
      this.renderStatus();
    });
    this.stream.addEventListener("upstream", (e) => {
      this.upstreamStatus = e.detail.status;
      this.renderStatus();
    });
    this.stream.addEventListener("subscriptions", (e) => this.renderSubscriptions(e.detail));
    this.stream.addEventListener("price", (e) => this.queue(e.detail));
    this.stream.addEventListener("servererror", (e) => this.showBanner(e.detail.message));
    this.stream.subscribe([...this.cards.keys()]);

    this.addForm.addEventListener("submit", (e) => this.onAdd(e));
    this.grid.addEventListener("submit", (e) => this.onRemove(e));
    this.banner.querySelector(".dismiss").addEventListener("click", () => this.hideBanner());
    this.banner.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.hideBanner();
    });

    // A page restored from the back/forward cache needs its socket back.
    window.addEventListener("pagehide", () => this.stream.stop());
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) this.stream.start();
    });
    this.stream.start();
  }

  // --- cards ---------------------------------------------------------------------

  registerCard(el) {
    const symbol = el.dataset.symbol;
    const field = (name) => el.querySelector(`[data-field="${name}"]`);
    const card = {
      el,
      fields: {
        price: field("last_price"),
        ask: field("ask_price"),
        askSize: field("ask_size"),
        bid: field("bid_price"),
        bidSize: field("bid_size"),
        time: field("time"),
        sparkline: field("sparkline"),
      },
      history: [],
      updates: 0,
    };
    // Seed the history with the price the server rendered from its cache.
    if (el.dataset.lastPrice !== undefined && el.dataset.lastPrice !== "") {
      card.history.push(Number(el.dataset.lastPrice));
    }
    el.dataset.historyLength = String(card.history.length);
    this.cards.set(symbol, card);
    this.empty.hidden = this.cards.size > 0;
    return card;
  }

  forgetCard(symbol) {
    const card = this.cards.get(symbol);
    if (!card) return;
    card.el.remove();
    this.cards.delete(symbol);
    this.pending.delete(symbol);
    this.empty.hidden = this.cards.size > 0;
  }

  // --- price updates: history per message, DOM once per animation frame -----------

  queue(message) {
    const card = this.cards.get(message.symbol);
    if (!card) return; // a late update for a symbol just removed
    card.updates += 1;
    this.totalUpdates += 1;
    const price = message.last_price;
    if (price !== null && price !== undefined) {
      const last = card.history[card.history.length - 1];
      // Every trade is a point; a quote repeats the last trade price and is not.
      // A snapshot (after (re)subscribing) adds a point only if the price moved
      // while we were away.
      const isTrade = message.data_type === "T" && !message.snapshot;
      if (isTrade || card.history.length === 0 || (message.snapshot && price !== last)) {
        card.history.push(price);
        if (card.history.length > HISTORY_LENGTH) card.history.shift();
      }
    }
    this.pending.set(message.symbol, message);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    for (const [symbol, message] of this.pending) {
      const card = this.cards.get(symbol);
      if (card) this.renderCard(card, message);
    }
    this.pending.clear();
    this.root.dataset.updateCount = String(this.totalUpdates);
  }

  renderCard(card, m) {
    const { el, fields, history } = card;
    const n = history.length;
    let trend = "flat";
    if (n >= 2 && history[n - 1] > history[n - 2]) trend = "up";
    if (n >= 2 && history[n - 1] < history[n - 2]) trend = "down";

    fields.price.textContent = formatPrice(m.last_price);
    fields.price.classList.toggle("up", trend === "up");
    fields.price.classList.toggle("down", trend === "down");
    fields.ask.textContent = formatPrice(m.ask_price);
    fields.askSize.textContent = formatSize(m.ask_size);
    fields.bid.textContent = formatPrice(m.bid_price);
    fields.bidSize.textContent = formatSize(m.bid_size);
    const when = new Date(m.timestamp);
    if (!Number.isNaN(when.getTime())) {
      fields.time.textContent = when.toLocaleTimeString();
      fields.time.dateTime = when.toISOString();
    }
    fields.sparkline.setAttribute("points", sparklinePoints(history));

    el.dataset.lastPrice = m.last_price ?? "";
    el.dataset.updateCount = String(card.updates);
    el.dataset.historyLength = String(n);
    el.dataset.trend = trend;
  }

  // --- status --------------------------------------------------------------------

  renderStatus() {
    const { delay, attempt } = this.socketStatus;
    let state = this.socketStatus.state;
    let text = STATUS_TEXT[state] || state;
    let title =
      state === States.CONNECTED || delay === undefined
        ? ""
        : `Retry ${attempt} in ${(delay / 1000).toFixed(1)} s`;
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
  }

  renderSubscriptions({ symbols, total }) {
    this.count.textContent = String(total);
    this.count.dataset.subscribedCount = String(total);
    this.symbolList.textContent = symbols.join(", ");
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

  // --- add / remove (fetch; the forms also work without JS) ------------------------

  async post(form) {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    const isJson = (response.headers.get("Content-Type") || "").includes("application/json");
    if (!isJson) {
      // A login page after the session expired, or a CSRF failure page.
      throw new Error(`unexpected reply (HTTP ${response.status}); reload the page`);
    }
    return { response, data: await response.json() };
  }

  async onAdd(event) {
    event.preventDefault();
    const form = this.addForm;
    const input = form.elements.symbol;
    const raw = input.value.trim();
    if (!raw) {
      this.setFeedback("Enter a symbol, for example NVDA.", true);
      input.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { response, data } = await this.post(form);
      if (!response.ok) {
        this.setFeedback(data.error || `Could not add ${raw}.`, true);
        input.focus();
        return;
      }
      if (data.created && data.html && !this.cards.has(data.symbol)) {
        const template = document.createElement("template");
        template.innerHTML = data.html.trim();
        const el = template.content.firstElementChild;
        this.grid.append(el);
        this.registerCard(el);
        this.stream.subscribe([data.symbol]);
      }
      this.setFeedback(data.message);
      input.value = "";
      input.focus();
    } catch (err) {
      this.setFeedback(`Could not add ${raw}: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async onRemove(event) {
    const form = event.target.closest(".remove-form");
    if (!form) return;
    event.preventDefault();
    const symbol = form.elements.symbol.value;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const { response, data } = await this.post(form);
      if (!response.ok) {
        this.setFeedback(data.error || `Could not remove ${symbol}.`, true);
        button.disabled = false;
        return;
      }
      // Keep keyboard focus in the grid: the next card's remove button, else the
      // previous one's, else the symbol input.
      const card = this.cards.get(symbol);
      const sibling = card && (card.el.nextElementSibling || card.el.previousElementSibling);
      this.forgetCard(symbol);
      this.stream.unsubscribe([symbol]);
      this.setFeedback(data.message);
      (sibling?.querySelector(".remove-btn") || this.addForm.elements.symbol).focus();
    } catch (err) {
      this.setFeedback(`Could not remove ${symbol}: ${err.message}`, true);
      button.disabled = false;
    }
  }
}

const root = document.getElementById("dashboard");
if (root) {
  // A handle for debugging in the console and for browser tests.
  window.fmpsiteDashboard = new Dashboard(root);
}
