// The candle rules of static/dashboard/bars.js (run by test_bars_js.py with node --test).
import assert from "node:assert/strict";
import test from "node:test";

import { BarBook, dayInterval, intervalMs, tickPrice, utcDayStart } from "../../../static/dashboard/bars.js";

const T0 = 1_700_000_040_000; // a minute boundary (UTC)
const bar = (start, o, h, l, c, v, extra = {}) => ({
  start, end: start + 60000, open: o, high: h, low: l, close: c, volume: v, seq: 1, epoch: "e", ...extra,
});
const trade = (timestamp, price, size = 10) => ({
  type: "price_update", data_type: "T", timestamp, last_price: price, last_size: size,
});

test("intervals and the day interval", () => {
  assert.equal(intervalMs("1s"), 1000);
  assert.equal(intervalMs("5m"), 300000);
  assert.equal(intervalMs("1x"), null);
  assert.equal(dayInterval(["1s", "1m"]), "1m");
  assert.equal(dayInterval(["1s", "5s"]), "5s");
  assert.equal(dayInterval([]), null);
  assert.equal(utcDayStart(Date.UTC(2024, 0, 2, 13, 30)), Date.UTC(2024, 0, 2));
});

test("a revision replaces its bar by start; an older copy does not", () => {
  const book = new BarBook("1m");
  book.applyBar(bar(T0, 10, 11, 9, 10.5, 100, { seq: 5 }));
  assert.ok(book.applyBar(bar(T0, 10, 12, 9, 11, 120, { seq: 6, updated: true })));
  assert.equal(book.applyBar(bar(T0, 10, 11, 9, 10.5, 100, { seq: 5 })), false);
  assert.deepEqual(book.candles().map((c) => c.high), [12]);
});

test("trades move the forming candle after the newest bar, not a closed one", () => {
  const book = new BarBook("1m");
  book.applyBar(bar(T0, 10, 11, 9, 10.5, 100));
  assert.equal(book.applyTick(trade(T0 + 59_999, 50)), null); // closed: the server revises
  const forming = book.applyTick(trade(T0 + 60_000, 10.6, 5));
  assert.deepEqual(
    [forming.start, forming.open, forming.high, forming.low, forming.close, forming.volume],
    [T0 + 60_000, 10.6, 10.6, 10.6, 10.6, 5],
  );
  book.applyTick(trade(T0 + 61_000, 10.9, 5));
  book.applyTick(trade(T0 + 62_000, 10.2, 5));
  assert.deepEqual([book.last().high, book.last().low, book.last().close, book.last().volume], [10.9, 10.2, 10.2, 15]);
  assert.equal(book.candles().length, 2);
  // The real bar replaces the forming candle.
  book.applyBar(bar(T0 + 60_000, 10.55, 10.9, 10.2, 10.2, 40));
  assert.equal(book.forming, null);
  assert.equal(book.candles().length, 2);
  assert.equal(book.last().volume, 40);
});

test("snapshots and quotes do not move a trade candle; mid bars move by quotes", () => {
  assert.equal(tickPrice({ ...trade(T0, 10), snapshot: true }), null);
  const quote = { data_type: "Q", timestamp: T0, bid_price: 1.1, ask_price: 1.3 };
  assert.equal(tickPrice(quote), null);
  const book = new BarBook("1s");
  book.applyBar({ ...bar(T0, 1, 1, 1, 1, null), end: T0 + 1000, source: "mid" });
  const candle = book.applyTick({ ...quote, timestamp: T0 + 1500 });
  assert.ok(Math.abs(candle.close - 1.2) < 1e-9);
  assert.equal(candle.volume, 0);
});

test("day statistics: bars of the UTC day plus the forming candle", () => {
  const day = utcDayStart(T0);
  const book = new BarBook("1m");
  book.applyBar(bar(day - 60_000, 1, 99, 0.5, 1, 1000)); // yesterday: left out
  book.applyBar(bar(T0, 10, 11, 9, 10.5, 100));
  book.applyBar(bar(T0 + 60_000, 10.5, 12, 10, 11, 50));
  assert.deepEqual(book.dayStats(day), { open: 10, high: 12, low: 9, volume: 150 });
  book.applyTick(trade(T0 + 120_500, 8.5, 7));
  assert.deepEqual(book.dayStats(day), { open: 10, high: 12, low: 8.5, volume: 157 });
  assert.equal(new BarBook("1m").dayStats(day), null);
});
