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

test("the stream position: /bars covers up to last_seq, bars extend it in turn", () => {
  const book = new BarBook("1s");
  assert.equal(book.position(), null); // nothing to recover from yet
  // A live bar before the first /bars answer: a gap until /bars fills it.
  assert.equal(book.follow(bar(T0, 1, 1, 1, 1, 1, { seq: 7 })), false);
  assert.equal(book.position(), null);
  book.covered("e", 6);
  assert.deepEqual(book.position(), { epoch: "e", seq: 7 });
  assert.ok(book.follow(bar(T0 + 1000, 1, 1, 1, 1, 1, { seq: 8 })));
  assert.ok(book.follow(bar(T0 + 1000, 1, 1, 1, 1, 1, { seq: 8 }))); // seen already
  assert.ok(book.follow(bar(T0, 1, 1, 1, 1, 1, { seq: 3 }))); // an older copy
  // 9 is missing: the position waits at 8 until it arrives.
  assert.equal(book.follow(bar(T0 + 3000, 1, 1, 1, 1, 1, { seq: 10 })), false);
  assert.equal(book.follow(bar(T0 + 4000, 1, 1, 1, 1, 1, { seq: 11 })), false);
  assert.deepEqual(book.position(), { epoch: "e", seq: 8 });
  assert.ok(book.follow(bar(T0 + 2000, 1, 1, 1, 1, 1, { seq: 9, updated: true })));
  assert.deepEqual(book.position(), { epoch: "e", seq: 11 });
  // A reload past a gap covers it, and what came after it in turn.
  assert.equal(book.follow(bar(T0 + 6000, 1, 1, 1, 1, 1, { seq: 14 })), false);
  book.covered("e", 13);
  assert.deepEqual(book.position(), { epoch: "e", seq: 14 });
  book.covered("e", 12); // an answer older than what the stream brought
  assert.deepEqual(book.position(), { epoch: "e", seq: 14 });
});

test("a new epoch restarts the position; bars without one leave it alone", () => {
  const book = new BarBook("1s");
  book.covered("e", 40);
  // The server lost its history: the new epoch's first bar is 1, in turn.
  assert.ok(book.follow(bar(T0, 1, 1, 1, 1, 1, { seq: 1, epoch: "f" })));
  assert.deepEqual(book.position(), { epoch: "f", seq: 1 });
  // Bars of another new epoch the page did not see from its start: reload.
  assert.equal(book.follow(bar(T0, 1, 1, 1, 1, 1, { seq: 4, epoch: "g" })), false);
  assert.equal(book.position(), null);
  book.covered("g", 4);
  assert.deepEqual(book.position(), { epoch: "g", seq: 4 });
  // A server without positions: nothing to follow, nothing reloaded.
  assert.ok(book.follow({ start: T0, open: 1, high: 1, low: 1, close: 1 }));
  book.covered(undefined, undefined);
  assert.deepEqual(book.position(), { epoch: "g", seq: 4 });
});
