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
}

export declare class PriceStream extends EventTarget {
  constructor(url: string, options?: PriceStreamOptions);
  readonly url: string;
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
