// TypeScript declarations of price-stream.js (the module itself is plain ES2020).

export declare const States: Readonly<{
  CONNECTING: "connecting";
  CONNECTED: "connected";
  RECONNECTING: "reconnecting";
  DISCONNECTED: "disconnected";
}>;
export type State = (typeof States)[keyof typeof States];

/** Full-jitter backoff delay in ms for the given (0-based) attempt. */
export declare function backoffDelay(
  attempt: number,
  options: { base: number; cap: number; random?: () => number },
): number;

/** `url` with its `token` query parameter set to `token`. */
export declare function withToken(url: string, token: string): string;

/** ws:// or wss:// URL of `path` on the page's own host. */
export declare function sameHostWebSocketUrl(
  path: string,
  loc?: { protocol: string; host: string },
): string;

export interface PriceStreamOptions {
  /** First backoff step in ms (default 500). */
  baseDelay?: number;
  /** Backoff cap in ms (default 30000). */
  maxDelay?: number;
  /** Keep-alive ping period in ms (default 30000). */
  pingInterval?: number;
  /** No frame within this many ms after a ping: the socket is replaced (default 10000). */
  pongTimeout?: number;
  /** A connection up this long resets the backoff (default 5000). */
  stableAfter?: number;
  /** Failed attempts in a row after which the state reads "disconnected" (default 6). */
  disconnectedAfter?: number;
  /**
   * Returns a fresh connection token (a JWT, e.g. from
   * `POST /api/v2/realtime/connection-token` or your own backend). Called before
   * every connect (the token goes in the URL's `?token=`) and on
   * `token_expiring` (sent as `refresh`). Throwing or rejecting counts as a failed
   * connection attempt. Without it the URL is used as given.
   */
  tokenProvider?: (() => string | Promise<string>) | null;
}

/** A `price_update` message as the server sends it (docs/protocol.md). */
export interface PriceUpdate {
  type: "price_update";
  symbol: string;
  timestamp: number | null;
  data_type: "T" | "Q" | "B";
  last_price: number | null;
  last_size: number | null;
  ask_price: number | null;
  ask_size: number | null;
  bid_price: number | null;
  bid_size: number | null;
  cached_at?: string;
  seq?: number;
  epoch?: string;
  snapshot?: boolean;
  recovered?: boolean;
  price_source?: "mid";
  mid_price?: number;
  break?: { price: number; size: number | null };
  [extension: string]: unknown;
}

/** A `bar` message: one closed OHLCV bar (docs/protocol.md, "Bars"). */
export interface Bar {
  type: "bar";
  symbol: string;
  /** One of the server's REALTIME_BAR_INTERVALS, e.g. "1s", "1m". */
  interval: string;
  /** Window start and end, UTC ms, `[start, end)`. */
  start: number;
  end: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** null for bars of mid prices (`source: "mid"`). */
  volume: number | null;
  vwap: number | null;
  trades: number;
  /** Numbered per stream key `SYMBOL@interval`, in `epoch`. */
  seq: number;
  epoch: string;
  /** A revision (late trade or break): replace the bar of the same (symbol, interval, start). */
  updated?: boolean;
  recovered?: boolean;
  source?: "mid";
  quotes?: number;
  [extension: string]: unknown;
}

/** An `alert` message: one firing of the connection's user's price alert
 * (docs/protocol.md, "Alerts"). */
export interface Alert {
  type: "alert";
  alert_id: number;
  event_id: number;
  symbol: string;
  condition:
    | "crosses_above"
    | "crosses_below"
    | "pct_change_day_above"
    | "pct_change_day_below";
  threshold: number;
  /** The price (`last_price`) that crossed. */
  price: number;
  /** The day's change in percent for `pct_change_day_*` alerts, else null. */
  value: number | null;
  tick_ts: number | null;
  /** The crossing update's position in its symbol's stream. */
  seq: number;
  epoch: string;
  /** ISO 8601. */
  fired_at: string;
  /** `"<alert id>:<epoch>:<seq>"`: the same firing is never recorded twice. */
  idempotency_key: string;
  [extension: string]: unknown;
}

export interface PriceStreamEventMap {
  state: CustomEvent<{ state: State; attempt: number; delay?: number; code?: number }>;
  subscriptions: CustomEvent<{ symbols: string[]; total: number }>;
  price: CustomEvent<PriceUpdate>;
  duplicate: CustomEvent<PriceUpdate>;
  gap: CustomEvent<{ symbol: string; epoch: string | null; after: number; seq: number }>;
  reset: CustomEvent<{ symbol: string; epoch: string | null; reason: "not_recovered" | "epoch" }>;
  recovery: CustomEvent<{ epoch: string | null; recovered: string[]; notRecovered: string[] }>;
  upstream: CustomEvent<{ status: string }>;
  servererror: CustomEvent<{ message: string; code?: string; symbols?: string[]; symbol?: string }>;
  connected: CustomEvent<{ message: string }>;
  bar: CustomEvent<Bar>;
  alert: CustomEvent<Alert>;
  tokenexpiring: CustomEvent<{ expiresIn: number }>;
  tokenrefreshed: CustomEvent<{ expiresIn: number }>;
  tokenerror: CustomEvent<{ error: unknown }>;
}

export declare class PriceStream extends EventTarget {
  constructor(url: string, options?: PriceStreamOptions);
  /** The URL as given (without the provider's token). */
  readonly url: string;
  /** The last token `tokenProvider` returned (null without one). */
  readonly token: string | null;
  /** The symbols this client wants (resubscribed after every reconnect). */
  readonly desired: Set<string>;
  /** The symbols the server confirmed on the current connection. */
  readonly confirmed: Set<string>;
  readonly state: State;
  start(): void;
  stop(): void;
  subscribe(symbols: string[]): void;
  unsubscribe(symbols: string[]): void;
  position(symbol: string): { epoch: string | null; seq: number | null };
  send(message: object): boolean;
  reconnectNow(): void;
  addEventListener<K extends keyof PriceStreamEventMap>(
    type: K,
    listener: (event: PriceStreamEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}
