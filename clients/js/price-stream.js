// PriceStream: one reconnecting WebSocket that speaks fmpsite's client protocol
// (docs/protocol.md). No DOM here: dashboard.js listens to its events.
//
// This file is the published ES module (clients/js: package.json, index.d.ts,
// README.md) and the dashboard's /static/dashboard/price-stream.js at once
// (STATICFILES_DIRS serves it from clients/js): edit it here only.
//
// Contract:
// - `desired` is the set of symbols the page wants. subscribe()/unsubscribe()
//   change it and, when the socket is open, tell the server at once. After every
//   (re)connect the whole desired set is subscribed again, because the server
//   forgets a connection's subscriptions when it closes.
// - A lost connection is retried with exponential backoff and full jitter
//   (a uniform delay in [0, min(cap, base * 2^attempt)]), so a server restart does
//   not bring every browser back in the same instant. The attempt counter resets
//   only after a connection has stayed up for `stableAfter` ms, so a server that
//   accepts and immediately closes cannot make the client spin.
// - A ping goes out every `pingInterval` ms; if nothing at all arrives within
//   `pongTimeout` ms after it, the socket is treated as dead (half-open TCP is
//   otherwise only noticed by the OS minutes later) and replaced.
// - Recovery (PROTOCOL.md "Sequence numbers, history and recovery"): per symbol
//   it remembers the epoch (from the `subscribed` ack and snapshots) and the last
//   `seq` seen. The resubscribe after a reconnect carries `recover` for every
//   symbol it has both for, so the server replays what was missed instead of a
//   snapshot. Unsubscribing a symbol forgets its position. A server without seq
//   or epoch gets exactly the guide's messages.
// - Sequence checks, per symbol and epoch: an update whose seq is at or below the
//   last one seen is a duplicate (an older state: never shown); one that skips
//   ahead is announced as a "gap" before its "price", so a display can fetch the
//   missing updates from the history endpoint.
// - Connection tokens (docs/frontends.md "When a token expires"), as the Python
//   client does it: with a `tokenProvider` (a function returning a fresh token,
//   or a promise of one) a token is fetched before every connect, the first and
//   each reconnect, a 4001 "token expired" close included, and put in the URL's
//   `?token=`; on `token_expiring` a fresh one is fetched and sent as
//   `refresh`, so the connection outlives its first token. A provider that
//   throws is a failed attempt: retried with the same backoff. Without a
//   provider the URL is used as given (the dashboard: its session cookie).
//
// Events (EventTarget, payload in `event.detail`):
//   "state"         {state, attempt, delay, code}  state is one of States
//   "subscriptions" {symbols: string[], total: number}  what the server confirmed
//   "price"         the price_update message as received (snapshot and replayed
//                   ones included; duplicates are not: see "duplicate")
//   "duplicate"     a price_update with a seq already seen in its epoch
//   "gap"           {symbol, epoch, after, seq}  updates after `after` and before
//                   `seq` were not received; sent before that update's "price"
//   "reset"         {symbol, epoch, reason}  the symbol's sequence restarted for
//                   this client (reason "not_recovered": the server could not
//                   replay; "epoch": a snapshot in a new epoch). What was drawn
//                   from the old sequence should be dropped and reloaded.
//   "recovery"      {epoch, recovered, notRecovered}  the answer to a `recover`
//   "servererror"   {message, code, symbols?, symbol?}  an `error` message from the server
//   "connected"     {message}  the server's greeting
//   "bar"           a `bar` message as received (docs/protocol.md "Bars"); this
//                   module neither subscribes nor recovers bar streams itself
//   "alert"         an `alert` message as received (docs/protocol.md "Alerts"):
//                   the user's price alert fired; best effort, no replay
//   "tokenexpiring" {expiresIn}  the server's token_expiring (seconds left)
//   "tokenrefreshed" {expiresIn}  a refresh was accepted (the new token's life)
//   "tokenerror"    {error}  tokenProvider failed (before a connect or for a
//                   refresh); a refused refresh is a "servererror" with code
//                   "token_refused"

export const States = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  DISCONNECTED: "disconnected",
});

/** Full-jitter backoff delay in ms for the given (0-based) attempt. */
export function backoffDelay(attempt, { base, cap, random = Math.random }) {
  return random() * Math.min(cap, base * 2 ** attempt);
}

/** `url` with its `token` query parameter set to `token`. */
export function withToken(url, token) {
  const u = new URL(url);
  u.searchParams.set("token", token);
  return u.toString();
}

/** ws:// or wss:// URL of `path` on the page's own host. */
export function sameHostWebSocketUrl(path, loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}${path}`;
}

// The server refuses client messages over 4 KiB (REALTIME_MAX_MESSAGE_BYTES): a
// resubscribe with `recover` for many long symbols is split below that.
const MAX_SUBSCRIBE_CHARS = 3500;

export class PriceStream extends EventTarget {
  constructor(
    url,
    {
      baseDelay = 500,
      maxDelay = 30000,
      pingInterval = 30000,
      pongTimeout = 10000,
      stableAfter = 5000,
      // Failed attempts in a row after which the state reads "disconnected"
      // instead of "reconnecting" (retries go on at the capped delay).
      disconnectedAfter = 6,
      // async () => token: called before every connect and on token_expiring.
      tokenProvider = null,
    } = {},
  ) {
    super();
    this.url = url;
    this.options = {
      baseDelay,
      maxDelay,
      pingInterval,
      pongTimeout,
      stableAfter,
      disconnectedAfter,
    };
    this.tokenProvider = tokenProvider;
    // The last token the provider gave (null without a provider).
    this.token = null;
    this.desired = new Set();
    this.confirmed = new Set();
    // symbol -> {epoch, seq}: the sequence position recover asks to resume from.
    this.positions = new Map();
    this.state = States.DISCONNECTED;
    this.attempt = 0;
    this.ws = null;
    this.stopped = true;
    this.everConnected = false;
    // Bumped by every connect and by stop(): a token that arrives for an older
    // one is dropped.
    this._connectId = 0;
    this._timers = { reconnect: null, ping: null, pong: null, stable: null };
    this._onOnline = () => this._retryNow();
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this._onOnline);
    this._connect();
  }

  stop() {
    this.stopped = true;
    this._connectId += 1;
    window.removeEventListener("online", this._onOnline);
    this._clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "page closed");
    this._setConfirmed(new Set(), 0);
    this._setState(States.DISCONNECTED);
  }

  subscribe(symbols) {
    const fresh = symbols.filter((s) => !this.desired.has(s));
    fresh.forEach((s) => this.desired.add(s));
    if (fresh.length) this.send({ action: "subscribe", symbols: fresh });
  }

  unsubscribe(symbols) {
    const present = symbols.filter((s) => this.desired.has(s));
    present.forEach((s) => {
      this.desired.delete(s);
      this.positions.delete(s);
    });
    if (present.length) this.send({ action: "unsubscribe", symbols: present });
  }

  /** The symbol's {epoch, seq} as far as this client knows (nulls when unknown). */
  position(symbol) {
    const pos = this.positions.get(symbol);
    return { epoch: pos?.epoch ?? null, seq: pos?.seq ?? null };
  }

  /** Send one protocol message if the socket is open; false otherwise. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // --- connection lifecycle ----------------------------------------------------

  _connect() {
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = null;
    if (this.stopped) return;
    if (!this.everConnected && this.attempt === 0) this._setState(States.CONNECTING);
    const id = ++this._connectId;
    if (!this.tokenProvider) {
      this._open(this.url);
      return;
    }
    this._freshToken().then(
      (token) => {
        if (id !== this._connectId || this.stopped) return; // stopped meanwhile
        this._open(withToken(this.url, token));
      },
      () => {
        if (id !== this._connectId || this.stopped) return;
        this._scheduleReconnect(1006);
      },
    );
  }

  /** The provider's next token (rejects, after a "tokenerror", if it fails). */
  async _freshToken() {
    try {
      const token = await this.tokenProvider();
      if (typeof token !== "string" || !token) {
        throw new TypeError(`tokenProvider returned ${JSON.stringify(token)}`);
      }
      this.token = token;
      return token;
    } catch (error) {
      console.warn("PriceStream: tokenProvider failed", error);
      this._emit("tokenerror", { error });
      throw error;
    }
  }

  /** token_expiring: a fresh token goes to the same socket as `refresh`. */
  _refresh() {
    if (!this.tokenProvider) return;
    const ws = this.ws;
    this._freshToken().then(
      (token) => {
        if (ws === this.ws) this.send({ action: "refresh", token });
      },
      () => {
        // The server closes with 4001 at exp; the reconnect asks again.
      },
    );
  }

  _open(url) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      console.error("PriceStream: cannot open", this.url, err);
      this._scheduleReconnect(1006);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.everConnected = true;
      this._setState(States.CONNECTED);
      this._timers.stable = setTimeout(() => {
        this.attempt = 0;
      }, this.options.stableAfter);
      if (this.desired.size) this._subscribeAll();
      this._timers.ping = setInterval(() => this._ping(), this.options.pingInterval);
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      clearTimeout(this._timers.pong); // any frame proves the socket is alive
      this._timers.pong = null;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("PriceStream: ignoring a non-JSON frame", event.data);
        return;
      }
      this._handle(message);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return; // a socket we already replaced
      this._disconnected(event.code);
    };
    ws.onerror = () => {
      // Always followed by a close event, which does the work.
    };
  }

  /** Subscribe the whole desired set, asking to recover every symbol whose epoch
   * and last seq are known; split when one message would be too large. */
  _subscribeAll() {
    const message = (symbols) => {
      const recover = {};
      for (const s of symbols) {
        const pos = this.positions.get(s);
        if (pos && pos.epoch !== null && pos.seq !== null) {
          recover[s] = { epoch: pos.epoch, seq: pos.seq };
        }
      }
      return Object.keys(recover).length
        ? { action: "subscribe", symbols, recover }
        : { action: "subscribe", symbols };
    };
    let batch = [];
    for (const symbol of this.desired) {
      batch.push(symbol);
      if (batch.length > 1 && JSON.stringify(message(batch)).length > MAX_SUBSCRIBE_CHARS) {
        batch.pop();
        this.send(message(batch));
        batch = [symbol];
      }
    }
    if (batch.length) this.send(message(batch));
  }

  _ping() {
    if (!this.send({ action: "ping" })) return;
    if (this._timers.pong) return;
    this._timers.pong = setTimeout(() => {
      console.warn("PriceStream: no reply to ping; reconnecting");
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close(4000, "ping timeout");
      this._disconnected(4000);
    }, this.options.pongTimeout);
  }

  _disconnected(code) {
    this.ws = null;
    this._clearTimers();
    this._setConfirmed(new Set(), 0);
    if (this.stopped) {
      this._setState(States.DISCONNECTED, { code });
      return;
    }
    this._scheduleReconnect(code);
  }

  _scheduleReconnect(code) {
    const { baseDelay, maxDelay, disconnectedAfter } = this.options;
    const delay = backoffDelay(this.attempt, { base: baseDelay, cap: maxDelay });
    this.attempt += 1;
    const state =
      this.attempt > disconnectedAfter ? States.DISCONNECTED : States.RECONNECTING;
    this._setState(state, { delay, code });
    this._timers.reconnect = setTimeout(() => this._connect(), delay);
  }

  _retryNow() {
    if (!this.stopped && this._timers.reconnect) this._connect();
  }

  /** "Reconnect now": skip the backoff wait (a person asked, not a retry loop). */
  reconnectNow() {
    if (this.stopped || this.state === States.CONNECTED) return;
    this.attempt = 0;
    if (this._timers.reconnect) this._connect();
  }

  _clearTimers() {
    clearTimeout(this._timers.reconnect);
    clearInterval(this._timers.ping);
    clearTimeout(this._timers.pong);
    clearTimeout(this._timers.stable);
    this._timers = { reconnect: null, ping: null, pong: null, stable: null };
  }

  // --- messages ------------------------------------------------------------------

  _handle(message) {
    switch (message.type) {
      case "connected":
        this._emit("connected", { message: message.message });
        break;
      case "subscription": {
        const next = new Set(this.confirmed);
        const change = Array.isArray(message.symbols) ? message.symbols : [];
        if (message.action === "subscribed") change.forEach((s) => next.add(s));
        if (message.action === "unsubscribed") change.forEach((s) => next.delete(s));
        this._setConfirmed(next, message.subscribed_total ?? next.size);
        if (message.action === "subscribed") this._acknowledged(message, change);
        break;
      }
      case "subscriptions":
        this._setConfirmed(new Set(message.symbols || []), (message.symbols || []).length);
        break;
      case "price_update":
        this._price(message);
        break;
      case "upstream_status":
        // Extension: the server's own upstream feed went down or came back.
        this._emit("upstream", { status: message.status });
        break;
      case "pong":
        break;
      case "token_expiring":
        this._emit("tokenexpiring", { expiresIn: message.expires_in });
        this._refresh();
        break;
      case "token_refreshed":
        this._emit("tokenrefreshed", { expiresIn: message.expires_in });
        break;
      case "bar":
        this._emit("bar", message);
        break;
      case "alert":
        this._emit("alert", message);
        break;
      case "error":
        this._emit("servererror", {
          message: message.message,
          code: message.code,
          symbols: Array.isArray(message.symbols) ? message.symbols : undefined,
          symbol: message.symbol,
        });
        break;
      default:
        // Additive protocol: unknown message types are ignored.
        break;
    }
  }

  /** A `subscribed` ack: the epoch of its symbols, and what `recover` achieved. */
  _acknowledged(message, symbols) {
    const epoch = typeof message.epoch === "string" ? message.epoch : null;
    const recovered = Array.isArray(message.recovered) ? message.recovered : null;
    const notRecovered = new Set(
      Array.isArray(message.not_recovered) ? message.not_recovered : [],
    );
    const resets = [];
    for (const symbol of symbols) {
      if (!this.desired.has(symbol)) continue;
      const pos = this.positions.get(symbol);
      if (recovered && recovered.includes(symbol) && pos) continue; // replay follows
      const changed = pos && pos.epoch !== null && epoch !== null && pos.epoch !== epoch;
      if (notRecovered.has(symbol) || changed) {
        // The snapshot that follows starts the symbol's sequence afresh.
        this.positions.set(symbol, { epoch, seq: null });
        const reason = notRecovered.has(symbol) ? "not_recovered" : "epoch";
        resets.push({ symbol, epoch, reason });
      } else if (!pos || pos.epoch === null) {
        this.positions.set(symbol, { epoch, seq: null });
      }
    }
    if (recovered) {
      this._emit("recovery", {
        epoch,
        recovered: [...recovered],
        notRecovered: [...notRecovered],
      });
    }
    resets.forEach((detail) => this._emit("reset", detail));
  }

  /** Sequence checks of one price_update, then its "price" event. */
  _price(message) {
    const { symbol, seq } = message;
    if (typeof seq !== "number" || !this.desired.has(symbol)) {
      this._emit("price", message);
      return;
    }
    let pos = this.positions.get(symbol);
    if (!pos) {
      pos = { epoch: null, seq: null };
      this.positions.set(symbol, pos);
    }
    const epoch = typeof message.epoch === "string" ? message.epoch : null;
    if (epoch !== null && epoch !== pos.epoch) {
      // Epoch change while connected (or the first epoch we hear of): the
      // sequence restarts here; what was drawn from the old one is void.
      const hadOne = pos.epoch !== null;
      pos.epoch = epoch;
      pos.seq = null;
      if (hadOne) this._emit("reset", { symbol, epoch, reason: "epoch" });
    }
    if (pos.seq !== null && seq <= pos.seq) {
      this._emit("duplicate", message);
      return;
    }
    if (pos.seq !== null && seq > pos.seq + 1) {
      this._emit("gap", { symbol, epoch: pos.epoch, after: pos.seq, seq });
    }
    pos.seq = seq;
    this._emit("price", message);
  }

  _setConfirmed(symbols, total) {
    this.confirmed = symbols;
    this._emit("subscriptions", { symbols: [...symbols], total });
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("state", { state, attempt: this.attempt, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
