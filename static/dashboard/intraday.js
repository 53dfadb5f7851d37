// Bars for the dashboard: one BarBook (bars.js) per symbol and interval, filled
// from GET /bars and kept live from the stream's `bar` messages and the
// symbol's trades. The table's day statistics and the chart (chart.js) read the
// books; nothing here touches the DOM.
//
// Why the stream is subclassed: PriceStream (clients/js/price-stream.js, the
// published client) emits "bar" but ignores `bar_subscription` replies and has
// no `bars` option on subscribe. BarStream adds the "barsubscription" event (and
// its own "bar", the same detail) in front of its message switch; the bar
// subscribe goes out through PriceStream's public send().
//
// Keeping the candles whole (docs/dashboard.md, "Intraday chart"):
// - A bar stream is subscribed once its symbol is confirmed on the connection
//   (the server serves bars only for symbols of the same or an earlier
//   subscribe), again after every reconnect.
// - Each book knows its stream's position (epoch and the seq up to which it
//   holds every bar, bars.js). The resubscribe after a reconnect carries
//   `recover` with it, as PriceStream does for ticks: the server replays the
//   bars that closed (or were revised) while the socket was down, and the
//   candles go on without a refetch.
// - A stream the reply does not recover (a first subscribe, `not_recovered`:
//   the history lost the seq, a new epoch) gets a GET /bars: bars flow live from
//   the reply on, so the history asked for after it leaves no hole. So does a
//   stream whose live bars skip a seq. A bar seen twice replaces itself (by
//   start), so any overlap is harmless.

import { PriceStream, States } from "./price-stream.js";
import { BarBook, dayInterval, intervalMs, utcDayStart } from "./bars.js";

/** PriceStream plus events "bar" (a `bar` message) and "barsubscription" (a
 * `bar_subscription` reply); everything else is PriceStream's. */
export class BarStream extends PriceStream {
  _handle(message) {
    if (message && message.type === "bar") {
      this.dispatchEvent(new CustomEvent("bar", { detail: message }));
    } else if (message && message.type === "bar_subscription") {
      this.dispatchEvent(new CustomEvent("barsubscription", { detail: message }));
    } else {
      super._handle(message);
    }
  }
}

const key = (symbol, interval) => `${symbol}@${interval}`;

// The server refuses client messages over 4 KiB: a bar subscribe with `recover`
// for many symbols is split below that (as PriceStream splits its own).
const MAX_SUBSCRIBE_CHARS = 3500;

/** Events: "change" {symbol, interval, candle?, full?}: a candle moved or closed
 * (`candle`), or the book was (re)loaded from /bars (`full`). */
export class Intraday extends EventTarget {
  constructor(stream, { barsUrl, intervals, now = () => Date.now() }) {
    super();
    this.stream = stream;
    this.barsUrl = barsUrl;
    this.intervals = intervals.filter((n) => intervalMs(n) !== null);
    this.dayInterval = dayInterval(this.intervals);
    this.now = now;
    this.books = new Map(); // "SYMBOL@interval" -> BarBook
    this.waiters = new Map(); // "SYMBOL@interval" -> resolve of the book's first load
    this.sent = new Set(); // keys subscribed on the current connection
    this.confirmed = new Set(); // symbols the server confirmed on it
    this.liveBars = 0; // `bar` messages applied, for the tests and the curious
    // Bar streams resubscribed with `recover`, by the reply's answer, the bars
    // replayed to them and the GET /bars this page sent: what the tests read
    // (window.fmpsiteDashboard.intraday).
    this.recoveredStreams = 0;
    this.notRecoveredStreams = 0;
    this.recoveredBars = 0;
    this.barLoads = 0;
    stream.addEventListener("state", (e) => {
      if (e.detail.state !== States.CONNECTED) {
        this.sent.clear();
        this.confirmed.clear();
      }
    });
    stream.addEventListener("subscriptions", (e) => {
      this.confirmed = new Set(e.detail.symbols);
      this.sendPending();
    });
    stream.addEventListener("barsubscription", (e) => this.onSubscribed(e.detail));
    stream.addEventListener("bar", (e) => this.onBar(e.detail));
    stream.addEventListener("price", (e) => this.onPrice(e.detail));
  }

  /** The book of (symbol, interval), subscribed and loaded; resolves once its
   * history was asked for (empty when /bars had none). */
  track(symbol, interval) {
    const k = key(symbol, interval);
    let book = this.books.get(k);
    if (!book) {
      book = new BarBook(interval);
      book.symbol = symbol;
      book.loading = 0; // GET /bars of it in flight
      book.ready = new Promise((resolve) => this.waiters.set(k, resolve));
      this.books.set(k, book);
      if (this.stream.state === States.CONNECTED) this.sendPending();
      else this.load(book); // no socket yet: draw what the server has now
    }
    return book.ready.then(() => book);
  }

  /** Stop one bar stream (the chart's short interval when it closes). */
  release(symbol, interval) {
    const k = key(symbol, interval);
    if (!this.books.delete(k)) return;
    this.waiters.delete(k);
    if (this.sent.delete(k)) {
      this.stream.send({ action: "unsubscribe", symbols: [symbol], bars: [interval] });
    }
  }

  /** A symbol left the watchlist: its books go (its unsubscribe ends its bars). */
  forget(symbol) {
    for (const [k, book] of this.books) {
      if (book.symbol === symbol) {
        this.books.delete(k);
        this.waiters.delete(k);
        this.sent.delete(k);
      }
    }
  }

  /** The day's open/high/low/volume of a symbol, or null (see bars.js). */
  dayStats(symbol) {
    if (!this.dayInterval) return null;
    const book = this.books.get(key(symbol, this.dayInterval));
    return book ? book.dayStats(utcDayStart(this.now())) : null;
  }

  /** Subscribe the bar streams of confirmed symbols not yet subscribed on this
   * connection: one message per interval (split when too large), with `recover`
   * for every book that knows its stream's position. */
  sendPending() {
    const byInterval = new Map();
    for (const [k, book] of this.books) {
      if (this.sent.has(k) || !this.confirmed.has(book.symbol)) continue;
      if (!byInterval.has(book.interval)) byInterval.set(book.interval, []);
      byInterval.get(book.interval).push(book);
    }
    for (const [interval, books] of byInterval) {
      let batch = [];
      for (const book of books) {
        batch.push(book);
        if (batch.length > 1 && JSON.stringify(this.subscribeMessage(interval, batch)).length > MAX_SUBSCRIBE_CHARS) {
          batch.pop();
          this.sendSubscribe(interval, batch);
          batch = [book];
        }
      }
      this.sendSubscribe(interval, batch);
    }
  }

  subscribeMessage(interval, books) {
    const message = { action: "subscribe", symbols: books.map((b) => b.symbol), bars: [interval] };
    const recover = {};
    for (const book of books) {
      const position = book.position();
      if (position) recover[key(book.symbol, interval)] = position;
    }
    if (Object.keys(recover).length) message.recover = recover;
    return message;
  }

  sendSubscribe(interval, books) {
    if (this.stream.send(this.subscribeMessage(interval, books))) {
      books.forEach((book) => this.sent.add(key(book.symbol, interval)));
    }
  }

  /** A `bar_subscription` reply: recovered streams get their missed bars replayed
   * next; the others are loaded from /bars. */
  onSubscribed(reply) {
    if (reply.action !== "subscribed" || !Array.isArray(reply.streams)) return;
    const recovered = new Set(Array.isArray(reply.recovered) ? reply.recovered : []);
    const notRecovered = Array.isArray(reply.not_recovered) ? reply.not_recovered : [];
    this.recoveredStreams += recovered.size;
    this.notRecoveredStreams += notRecovered.length;
    for (const k of reply.streams) {
      const book = this.books.get(k);
      if (book && !recovered.has(k)) this.load(book);
    }
  }

  /** GET /bars of a book (the UTC day of it for the day interval) into it. */
  async load(book) {
    const k = key(book.symbol, book.interval);
    const params = new URLSearchParams({ interval: book.interval, limit: "5000" });
    // The day interval's book holds the UTC day (day statistics, and the chart
    // of the same day); a shorter one the newest bars the history kept.
    if (book.interval === this.dayInterval) params.set("start", String(utcDayStart(this.now())));
    this.barLoads += 1;
    book.loading += 1;
    try {
      const response = await fetch(`${this.barsUrl}${encodeURIComponent(book.symbol)}?${params}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      // 404: bars are off, or this stream has no bar yet: live bars fill it.
      if (response.ok && this.books.get(k) === book) {
        const page = await response.json();
        const bars = Array.isArray(page.bars) ? page.bars : [];
        for (const bar of bars) book.applyBar({ ...bar, epoch: bar.epoch ?? page.epoch });
        book.covered(page.epoch, page.last_seq);
        book.historyBars = bars.length; // what this answer had, live bars aside
        this.emit({ symbol: book.symbol, interval: book.interval, full: true });
      }
    } catch {
      // The candles go on from live bars; a reconnect asks again.
    } finally {
      book.loading -= 1;
      const resolve = this.waiters.get(k);
      if (resolve) {
        this.waiters.delete(k);
        resolve();
      }
    }
  }

  onBar(bar) {
    const book = this.books.get(key(bar.symbol, bar.interval));
    if (!book) return;
    // A bar before this one is missing (a skipped seq, a new epoch's first bars):
    // /bars fills the candles and the position, unless a load is under way.
    if (!book.follow(bar) && !book.loading) this.load(book);
    if (bar.recovered) this.recoveredBars += 1;
    if (!book.applyBar(bar)) return;
    this.liveBars += 1;
    this.emit({ symbol: bar.symbol, interval: bar.interval, candle: book.bars.get(bar.start), bar: true });
  }

  onPrice(message) {
    for (const interval of this.intervals) {
      const book = this.books.get(key(message.symbol, interval));
      const candle = book && book.applyTick(message);
      if (candle) this.emit({ symbol: message.symbol, interval, candle });
    }
  }

  emit(detail) {
    this.dispatchEvent(new CustomEvent("change", { detail }));
  }
}
