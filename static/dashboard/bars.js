// Candles of one symbol and interval, as the browser holds them: the closed bars
// the server built (from /bars and `bar` messages, docs/protocol.md "Bars") plus
// one forming candle the page moves itself from the symbol's trades between two
// bars. Pure: no DOM, no network; intraday.js and chart.js use it.
//
// Rules:
// - A bar replaces the one with the same `start` (a revision, `"updated": true`),
//   except an older copy of it (same epoch, lower seq: a /bars answer that was
//   in flight while the revision arrived).
// - The forming candle covers the window after the newest closed bar. A trade in
//   an already closed window is left to the server (it re-sends that bar as a
//   revision); a trade in a later window starts a new forming candle.
// - The forming candle's open is the first trade this page saw in its window, so
//   a page opened mid-window shows a partial candle until the real bar arrives.
// - Quote-only symbols (bars with `"source": "mid"`) move the forming candle from
//   the mid of bid and ask, without volume, as the server's mid bars do.
// - The stream position (what a resubscribe's `recover` resumes from,
//   docs/protocol.md "Bars"): `seq` is the highest seq of the book's epoch such
//   that every bar message up to it is in the book (or, before the UTC day the
//   book asked /bars for, not wanted). A /bars answer holds the stream up to its
//   `last_seq`; a streamed bar extends the position when it is the next one and
//   waits in `ahead` when one before it is missing (the caller then reloads
//   /bars). A new epoch starts at seq 0: its first bar is seq 1.

const UNITS = { s: 1000, m: 60000, h: 3600000 };
export const DAY_MS = 86400000;

/** "1m" -> 60000; null for a name that is not <n>s, <n>m or <n>h. */
export function intervalMs(name) {
  const match = /^(\d+)([smh])$/.exec(name || "");
  return match ? Number(match[1]) * UNITS[match[2]] : null;
}

/** The start (ms) of the window of length `ms` that holds `timestamp`. */
export function windowStart(timestamp, ms) {
  return Math.floor(timestamp / ms) * ms;
}

/** The start of the UTC day that holds `now` (ms): the "day" of day statistics. */
export function utcDayStart(now) {
  return windowStart(now, DAY_MS);
}

/** The interval day statistics are built from: 1m if offered, else the longest. */
export function dayInterval(names) {
  if (names.includes("1m")) return "1m";
  const known = names.filter((n) => intervalMs(n) !== null);
  known.sort((a, b) => intervalMs(b) - intervalMs(a));
  return known[0] ?? null;
}

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The price a tick moves a candle to, and its size: a trade's last price, or
 * for mid-sourced bars a quote's mid; null when the tick says nothing. */
export function tickPrice(message, mid = false) {
  if (message.snapshot) return null; // the cached state again, not a new trade
  if (message.data_type === "T" && num(message.last_price) !== null) {
    return { price: message.last_price, size: num(message.last_size) };
  }
  if (mid && message.data_type === "Q") {
    const bid = num(message.bid_price);
    const ask = num(message.ask_price);
    if (bid !== null && ask !== null) return { price: (bid + ask) / 2, size: null };
  }
  return null;
}

export class BarBook {
  constructor(interval) {
    this.interval = interval;
    this.ms = intervalMs(interval);
    this.bars = new Map(); // start -> closed bar (server's)
    this.newest = null; // start of the newest closed bar
    this.forming = null; // {start, end, open, high, low, close, volume, forming: true}
    this.mid = false; // the server's bars of this symbol are of mid prices
    this.version = 0; // bumped by every closed-bar change (day statistics cache)
    this._day = null; // {dayStart, version, stats}
    this.epoch = null; // the bar stream's epoch, once a bar or /bars named it
    this.seq = 0; // every bar message of `epoch` up to this seq is in the book
    this.ahead = new Set(); // seqs past `seq` + 1 seen (one before them is missing)
  }

  /** Where a resubscribe's `recover` resumes this stream: {epoch, seq}, or null
   * before the book holds any bar message of its epoch. */
  position() {
    return this.epoch !== null && this.seq > 0 ? { epoch: this.epoch, seq: this.seq } : null;
  }

  /** Follow the stream's position with a `bar` message (live or replayed); false
   * when a bar before it is missing (a seq skipped, or the first bars of a new
   * epoch): the caller reloads /bars, which fills the position up. */
  follow(bar) {
    const seq = num(bar.seq);
    if (seq === null || typeof bar.epoch !== "string") return true; // no positions
    this._epoch(bar.epoch);
    if (seq <= this.seq) return true; // seen already (a replay, a /bars copy)
    this.ahead.add(seq);
    this._advance();
    return !this.ahead.size;
  }

  /** A /bars answer was applied: the book holds its epoch up to `last_seq`. */
  covered(epoch, lastSeq) {
    if (typeof epoch !== "string" || num(lastSeq) === null) return;
    this._epoch(epoch);
    this.seq = Math.max(this.seq, lastSeq);
    this._advance();
  }

  _epoch(epoch) {
    if (epoch === this.epoch) return;
    this.epoch = epoch;
    this.seq = 0;
    this.ahead.clear();
  }

  _advance() {
    for (const seq of this.ahead) if (seq <= this.seq) this.ahead.delete(seq);
    while (this.ahead.delete(this.seq + 1)) this.seq += 1;
  }

  /** A bar from /bars or the stream; true when it changed what is drawn. */
  applyBar(bar) {
    if (!bar || typeof bar.start !== "number") return false;
    const had = this.bars.get(bar.start);
    if (had && had.epoch === bar.epoch && num(had.seq) !== null && num(bar.seq) !== null && bar.seq < had.seq) {
      return false;
    }
    this.bars.set(bar.start, {
      start: bar.start,
      end: bar.end,
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: num(bar.volume),
      seq: bar.seq,
      epoch: bar.epoch,
    });
    if (bar.source === "mid") this.mid = true;
    if (this.newest === null || bar.start > this.newest) this.newest = bar.start;
    if (this.forming && this.forming.start <= this.newest) this.forming = null;
    this.version += 1;
    return true;
  }

  /** A price_update; the forming candle when it moved, else null. */
  applyTick(message) {
    const tick = tickPrice(message, this.mid);
    if (!tick || num(message.timestamp) === null) return null;
    const start = windowStart(message.timestamp, this.ms);
    if (this.newest !== null && start <= this.newest) return null; // closed: the server revises
    const { price, size } = tick;
    let candle = this.forming;
    if (candle && start < candle.start) return null; // an older tick, out of order
    if (!candle || start > candle.start) {
      candle = { start, end: start + this.ms, open: price, high: price, low: price, close: price, volume: 0, forming: true };
      this.forming = candle;
    } else {
      candle.high = Math.max(candle.high, price);
      candle.low = Math.min(candle.low, price);
      candle.close = price;
    }
    if (size !== null && !this.mid) candle.volume += size;
    return candle;
  }

  /** Closed bars oldest first, then the forming candle. */
  candles() {
    const out = [...this.bars.values()].sort((a, b) => a.start - b.start);
    if (this.forming) out.push(this.forming);
    return out;
  }

  /** The newest candle (forming or closed), or null. */
  last() {
    if (this.forming) return this.forming;
    return this.newest === null ? null : this.bars.get(this.newest);
  }

  /** Open, high, low and volume of the candles starting at or after `dayStart`
   * (volume null for mid bars); null before the day's first candle. The closed
   * bars' part is cached until a bar changes; the forming candle is added on top. */
  dayStats(dayStart) {
    if (!this._day || this._day.dayStart !== dayStart || this._day.version !== this.version) {
      let stats = null;
      for (const bar of [...this.bars.values()].sort((a, b) => a.start - b.start)) {
        if (bar.start < dayStart) continue;
        stats = mergeStats(stats, bar, this.mid);
      }
      this._day = { dayStart, version: this.version, stats };
    }
    const closed = this._day.stats;
    if (!this.forming || this.forming.start < dayStart) return closed;
    return mergeStats(closed ? { ...closed } : null, this.forming, this.mid);
  }
}

function mergeStats(stats, candle, mid) {
  const volume = mid || candle.volume === null ? null : candle.volume;
  if (!stats) {
    return { open: candle.open, high: candle.high, low: candle.low, volume };
  }
  stats.high = Math.max(stats.high, candle.high);
  stats.low = Math.min(stats.low, candle.low);
  stats.volume = stats.volume === null && volume === null ? null : (stats.volume ?? 0) + (volume ?? 0);
  return stats;
}
