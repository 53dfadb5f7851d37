"""Baseline ``naive``: the Channels tutorial design, as a tiny separate ASGI app.

Every client consumer ``group_add``s itself to each symbol's group, and a feed
``group_send``s one event per tick to the symbol's group; each consumer then
``send_json``s it (one JSON encode per client per tick, one ``dispatch`` with its
database-connection hop per message). Run under daphne with
``DJANGO_SETTINGS_MODULE=bench.naive.settings`` on the in-memory layer or on
channels-redis (``BENCH_NAIVE_REDIS_URL``).
"""
