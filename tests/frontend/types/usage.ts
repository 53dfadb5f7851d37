// A TypeScript user of fmpsite-price-stream (clients/js/index.d.ts), compiled with
// `tsc --noEmit` by tests/frontend/test_js_client_types.py. Each line uses the
// declarations the way the README does; the `@ts-expect-error` lines fail the
// check if a declaration ever loosens to `any` (tsc reports an unused directive).
import {
  type Alert,
  type Bar,
  type PriceUpdate,
  type State,
  PriceStream,
  States,
  backoffDelay,
  sameHostWebSocketUrl,
  withToken,
} from "fmpsite-price-stream";

async function fetchToken(): Promise<string> {
  const r = await fetch("https://prices.example.com/api/v2/realtime/connection-token", {
    method: "POST",
    headers: { Authorization: "Token abc" },
  });
  const body: { token: string; expires_at: string } = await r.json();
  return body.token;
}

const stream = new PriceStream("wss://prices.example.com/api/v2/realtime/ws/prices", {
  tokenProvider: fetchToken,
  maxDelay: 5000,
});
new PriceStream(sameHostWebSocketUrl("/api/v2/realtime/ws/prices"), {
  tokenProvider: () => "a.b.c",
});
new PriceStream("ws://127.0.0.1:8000/api/v2/realtime/ws/prices");

// @ts-expect-error a token provider returns a token, not a number
new PriceStream("ws://x/", { tokenProvider: () => 42 });
// @ts-expect-error an unknown option
new PriceStream("ws://x/", { tokenProvidr: fetchToken });

stream.addEventListener("price", (event) => {
  const update: PriceUpdate = event.detail;
  const price: number | null = update.last_price;
  const seq: number | undefined = update.seq;
  console.log(update.symbol, price, seq);
});
stream.addEventListener("bar", (event) => {
  const bar: Bar = event.detail;
  const ohlc: [number, number, number, number] = [bar.open, bar.high, bar.low, bar.close];
  const volume: number | null = bar.volume;
  const key = `${bar.symbol}@${bar.interval}`;
  const revision: boolean | undefined = bar.updated;
  console.log(key, ohlc, volume, bar.start, bar.end, bar.seq, bar.epoch, revision);
  // @ts-expect-error a bar's close is a number
  const wrong: string = bar.close;
  console.log(wrong);
});
stream.addEventListener("alert", (event) => {
  const alert: Alert = event.detail;
  const key: string = alert.idempotency_key;
  const pct: number | null = alert.value;
  if (alert.condition === "crosses_above") console.log(alert.symbol, alert.price, key, pct);
  // @ts-expect-error not a condition the server knows
  const bogus: Alert["condition"] = "above";
  console.log(bogus, alert.alert_id, alert.event_id, alert.fired_at);
});
stream.addEventListener("tokenexpiring", (event) => {
  const left: number = event.detail.expiresIn;
  console.log(left);
});
stream.addEventListener("tokenrefreshed", (event) => console.log(event.detail.expiresIn));
stream.addEventListener("tokenerror", (event) => console.warn(event.detail.error));
stream.addEventListener("state", (event) => {
  const state: State = event.detail.state;
  const code: number | undefined = event.detail.code;
  if (state === States.RECONNECTING && code === 4001) console.log("token expired");
});
stream.addEventListener("reset", (event) => {
  // @ts-expect-error reason is "not_recovered" | "epoch"
  const reason: "gap" = event.detail.reason;
  console.log(reason);
});

const token: string | null = stream.token;
const url: string = withToken(stream.url, token ?? "x.y.z");
const delay: number = backoffDelay(3, { base: 500, cap: 30000 });
const { epoch, seq } = stream.position("AAPL");
console.log(url, delay, epoch, seq);
stream.subscribe(["AAPL", "MSFT"]);
stream.start();
stream.unsubscribe(["MSFT"]);
stream.reconnectNow();
stream.stop();
