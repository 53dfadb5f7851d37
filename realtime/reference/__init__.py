"""Reference data: a symbol's name, exchange, asset class, previous close and open.

Fetched from FMP's REST quote endpoints with the same key as the stream (or from
the built-in simulator's REST port when no key is configured), batched, cached per
symbol per trading day, and never on the tick path: snapshots, ``/cache``, the
reference endpoint and the subscribe check read it; ``price_update`` does not.

- ``endpoint``: where FMP's REST API is (``rest_endpoint``), and
  ``set_rest_base`` (where the simulator's REST API listens);
- ``client``: ``FmpRestClient``, the HTTP calls and FMP's error statuses, and the
  mapping of FMP's quote objects to entries;
- ``cache``: per trading day, in-process (embedded) or in Redis (scaled);
- ``service``: ``ReferenceService`` (batching, coalescing, rate budget, back-off);
- ``selectors``: what the rest of the product calls.
"""
