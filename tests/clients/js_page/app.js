// A page of another origin using fmpsite's browser client the way its README
// says: `import { PriceStream } from "fmpsite-price-stream"` (an import map in
// index.html points that name at the product's own
// /static/dashboard/price-stream.js), a tokenProvider that buys connection
// tokens from POST /api/v2/realtime/connection-token with a DRF token
// (cross-origin, CORS), and a record of what it saw for
// tests/clients/test_js_client_browser.py to read.
import { PriceStream } from "fmpsite-price-stream";

const config = JSON.parse(document.getElementById("config").textContent);
const record = {
  moduleUrl: import.meta.resolve("fmpsite-price-stream"),
  tokens: [], // {token, expiresAt (ms), at}
  events: [], // {type, detail, at, connection}
  prices: [], // {symbol, seq, epoch, snapshot, at, connection}
  connections: 0,
};
window.record = record;

let calls = 0;
async function tokenProvider() {
  // The i-th call uses the i-th DRF key (the last one from then on): a test can
  // make the refresh come from another user.
  const key = config.drfKeys[Math.min(calls, config.drfKeys.length - 1)];
  calls += 1;
  const response = await fetch(`${config.httpBase}/api/v2/realtime/connection-token`, {
    method: "POST",
    headers: { Authorization: `Token ${key}` },
  });
  if (!response.ok) throw new Error(`connection-token: HTTP ${response.status}`);
  const body = await response.json();
  record.tokens.push({ token: body.token, expiresAt: Date.parse(body.expires_at), at: Date.now() });
  return body.token;
}

const stream = new PriceStream(config.wsUrl, {
  tokenProvider,
  baseDelay: 200,
  maxDelay: 1000,
});
window.stream = stream;

const plain = (detail) => {
  if (detail && detail.error !== undefined) return { error: String(detail.error) };
  return JSON.parse(JSON.stringify(detail ?? null));
};
for (const type of [
  "state",
  "subscriptions",
  "reset",
  "recovery",
  "servererror",
  "connected",
  "tokenexpiring",
  "tokenrefreshed",
  "tokenerror",
]) {
  stream.addEventListener(type, (event) => {
    if (type === "state" && event.detail.state === "connected") record.connections += 1;
    record.events.push({
      type,
      detail: plain(event.detail),
      at: Date.now(),
      connection: record.connections,
    });
  });
}
stream.addEventListener("price", (event) => {
  const p = event.detail;
  record.prices.push({
    symbol: p.symbol,
    seq: p.seq ?? null,
    epoch: p.epoch ?? null,
    snapshot: Boolean(p.snapshot),
    at: Date.now(),
    connection: record.connections,
  });
});

stream.subscribe(config.symbols);
stream.start();
