"""Price alerts (issue 25): a room of its own beside the data path.

The feed's updates are observed by an ``AlertEngine`` (engine.py) running where
the feed runs; a pure evaluator (evaluator.py) finds the crossings in
O(alerts crossed) per tick; firings leave the tick path through a queue to a
writer that records each ``AlertEvent`` once (models.py, a unique idempotency
key) and then delivers it live (to the owner's sockets, through the hub) and by
webhook (webhook.py). REST and the admin edit alerts through services.py.
"""
