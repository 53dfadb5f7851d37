"""Settings for every deployment, read from the environment (12-factor).

Variables are read through fmpsite/settings/env.py (empty means unset); every one
is documented in ``.env.example``. Which module to load:
- ``fmpsite.settings.development``: manage.py's default (DEBUG on unless
  ``DJANGO_DEBUG`` says otherwise), so every command works on a fresh clone;
- ``fmpsite.settings.production``: fmpsite.asgi's default (daphne), DEBUG off, a
  real secret key, hashed and compressed static files;
- this module: DEBUG from ``DJANGO_DEBUG`` (default off), what the tests' servers use.

Two modes share one code path (ARCHITECTURE.md):
- embedded (no ``REDIS_URL``): SQLite by default, the in-memory channel layer, the
  in-process tick cache, and the feed running inside the web process;
- scaled (``REDIS_URL`` set): channels-redis, the Redis tick cache, and the feed in
  ``manage.py runworker fmp-feed``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from fmpsite.gctune import DEFAULT_THRESHOLDS, parse_thresholds
from fmpsite.settings import env as _env
from fmpsite.settings.env import (  # noqa: F401 - settings modules use them too
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)
from realtime.redisurl import InvalidRedisUrl, channel_host, parse_sentinel, split_urls

BASE_DIR = _env.BASE_DIR


# --- Django core -------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", _env.DEFAULT_DEBUG)

# With DEBUG off a missing, published, short or repetitive key stops the process.
SECRET_KEY = _env.secret_key(DEBUG)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Under /api/ a failed CSRF check answers JSON like every other API error.
CSRF_FAILURE_VIEW = "realtime.api.exceptions.json_csrf_failure"

INSTALLED_APPS = [
    # realtime first: its runworker command (which hosts the feed) overrides
    # channels' one; daphne before staticfiles so its runserver serves ASGI.
    "realtime",
    # fmpsite's runserver (daphne's, minus Django's static handler) wins over daphne's.
    "fmpsite",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI files served by the product (no CDN)
    "dashboard",
]

# Paths that load balancers, Kubernetes probes and Prometheus reach by IP:port:
# ProbeHostMiddleware lets exactly these (GET/HEAD) through host validation, and
# they are never redirected to https (docs/operations.md, "Probes").
PROBE_PATHS = ["/health", "/api/v2/realtime/health", "/metrics"]

MIDDLEWARE = [
    # First: before anything that validates the Host header (docs/operations.md).
    "fmpsite.middleware.ProbeHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from this process when no nginx is in front (fmpsite/staticfiles.py).
    "fmpsite.staticfiles.StaticFilesMiddleware",
    # Before CommonMiddleware, which may answer first (django-cors-headers' docs).
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fmpsite.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "fmpsite.urls"
ASGI_APPLICATION = "fmpsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded mode writes from several threads (each ASGI request has its own):
    # WAL lets readers run beside the writer, IMMEDIATE takes the write lock at
    # BEGIN so the busy timeout applies (a deferred transaction upgrading its lock
    # fails at once with "database is locked"), and writers wait up to `timeout` s.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_float("DATABASE_SQLITE_TIMEOUT", 20.0),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# clients/js/price-stream.js is both the published ES module (clients/js) and the
# dashboard's /static/dashboard/price-stream.js: one file, served from there.
STATICFILES_DIRS = [BASE_DIR / "static", ("dashboard", BASE_DIR / "clients" / "js")]
# Where `manage.py collectstatic` puts the files nginx (or WhiteNoise) serves.
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
# WhiteNoise (fmpsite/staticfiles.py) also serves from the apps' and static/
# folders, so any daphne serves its CSS and JS without a collectstatic step; in
# DEBUG it rescans per request. production.py serves only the collected files.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# --- Production hardening (active whenever DEBUG is off) ----------------------------

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds every subdomain to HTTPS for months and cannot be taken
        # back quickly: an operator opts in with DJANGO_SECURE_HSTS_PRELOAD=true.
        # Left off, `check --deploy` would warn (W021) about that choice forever.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Probes and scrapers arrive over plain HTTP by IP:port (PROBE_PATHS).
    SECURE_REDIRECT_EXEMPT = [f"^{path.lstrip('/')}$" for path in PROBE_PATHS]

# --- Mode: embedded or scaled -------------------------------------------------------

# A plain Redis (redis://, rediss://, unix://) or a Sentinel group
# (redis+sentinel://host1:26379,host2:26379/mymaster/0): realtime/redisurl.py.
REDIS_URL = env_str("REDIS_URL")
for _url in (REDIS_URL, *split_urls(env_str("REALTIME_CHANNEL_REDIS_URL"))):
    try:
        parse_sentinel(_url)
    except InvalidRedisUrl as exc:
        scheme = urlsplit(_url).scheme
        raise ImproperlyConfigured(f"Redis URL ({scheme}://...): {exc}") from None
REALTIME_MODE = "scaled" if REDIS_URL else "embedded"
# Connections each process's asyncio Redis clients (cache, history, status, slots)
# may open; more concurrent commands wait for a free one (realtime/stores.py).
REALTIME_REDIS_POOL_SIZE = env_int("REALTIME_REDIS_POOL_SIZE", 20)
# Seconds a command waits for a free pooled connection before it fails. Subscribes
# and connects share their reads per round (realtime/coalesce.py), so a storm
# queues in memory, not here.
REALTIME_REDIS_POOL_WAIT = env_float("REALTIME_REDIS_POOL_WAIT", 5.0)

# The channel layer may live on its own Redis (docs/scaling.md's capacity plan),
# so its latency does not depend on the cache and history writes; several
# comma-separated URLs shard it (channels-redis hashes each group and channel to
# one of them, docs/scaling.md).
REALTIME_CHANNEL_REDIS_URL = env_str("REALTIME_CHANNEL_REDIS_URL") or REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    channel_host(url, socket_timeout=None)
                    for url in split_urls(REALTIME_CHANNEL_REDIS_URL)
                ],
                "capacity": env_int("REALTIME_CHANNEL_CAPACITY", 1000),
                "expiry": 30,
                "prefix": env_str("REALTIME_CHANNEL_PREFIX", "fmpsite"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": env_int("REALTIME_CHANNEL_CAPACITY", 1000)},
        }
    }

# --- Upstream: Financial Modeling Prep (FMP_*) --------------------------------------

FMP_API_KEY = env_str("FMP_API_KEY")
FMP_WS_URL = env_str("FMP_WS_URL", "wss://websockets.financialmodelingprep.com")
FMP_PROTOCOL = env_str("FMP_PROTOCOL", "legacy")
if FMP_PROTOCOL not in {"legacy", "stream"}:
    raise ImproperlyConfigured(f"FMP_PROTOCOL={FMP_PROTOCOL!r}: use legacy or stream")
FMP_STREAMS = env_list("FMP_STREAMS", "fmp-us-equities-stream")
FMP_LOGIN_TIMEOUT = env_float("FMP_LOGIN_TIMEOUT", 5.0)
FMP_RECONNECT_BASE = env_float("FMP_RECONNECT_BASE", 1.0)
FMP_RECONNECT_CAP = env_float("FMP_RECONNECT_CAP", 60.0)
FMP_RECONNECT_MAX_ATTEMPTS = env_int("FMP_RECONNECT_MAX_ATTEMPTS", 0)  # 0: forever
FMP_FATAL_BACKOFF = env_float("FMP_FATAL_BACKOFF", 300.0)
# First wait after FMP says the account's one connection slot is taken; doubles up
# to FMP_FATAL_BACKOFF, starts again after a stable session.
FMP_SLOT_BACKOFF = env_float("FMP_SLOT_BACKOFF", 15.0)
FMP_STABLE_AFTER = env_float("FMP_STABLE_AFTER", 30.0)
FMP_IDLE_TIMEOUT = env_float("FMP_IDLE_TIMEOUT", 90.0)
FMP_PING_INTERVAL = env_float("FMP_PING_INTERVAL", 20.0)  # 0: no WebSocket pings
FMP_PING_TIMEOUT = env_float("FMP_PING_TIMEOUT", 20.0)
FMP_SUBSCRIBE_BATCH = env_int("FMP_SUBSCRIBE_BATCH", 100)
# PEM file of extra CA certificates/intermediates trusted on top of certifi's bundle
# (and SSL_CERT_FILE); verification is never turned off.
FMP_CA_BUNDLE = env_str("FMP_CA_BUNDLE")
for _name in (
    "FMP_LOGIN_TIMEOUT",
    "FMP_RECONNECT_BASE",
    "FMP_RECONNECT_CAP",
    "FMP_FATAL_BACKOFF",
    "FMP_SLOT_BACKOFF",
    "FMP_STABLE_AFTER",
    "FMP_IDLE_TIMEOUT",
    "FMP_PING_INTERVAL",
    "FMP_PING_TIMEOUT",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]}: must be >= 0")
if FMP_SUBSCRIBE_BATCH < 1:
    raise ImproperlyConfigured(f"FMP_SUBSCRIBE_BATCH={FMP_SUBSCRIBE_BATCH}: >= 1")
# Reference data (names, previous close, open) from FMP's REST API, same key
# (realtime/reference/). Without FMP_API_KEY the built-in simulator's REST port is used.
FMP_REST_ENABLED = env_bool("FMP_REST_ENABLED", True)
FMP_REST_URL = env_str("FMP_REST_URL", "https://financialmodelingprep.com")
FMP_REST_TIMEOUT = env_float("FMP_REST_TIMEOUT", 5.0)
FMP_REST_BATCH = env_int("FMP_REST_BATCH", 50)  # symbols per batch-quote request
FMP_REST_MAX_PER_MINUTE = env_float("FMP_REST_MAX_PER_MINUTE", 60.0)  # 0: no cap
FMP_REST_BACKOFF = env_float("FMP_REST_BACKOFF", 30.0)  # after 429/unreachable, x2
FMP_REST_BACKOFF_CAP = env_float("FMP_REST_BACKOFF_CAP", 600.0)
if FMP_REST_TIMEOUT <= 0 or FMP_REST_BATCH < 1 or FMP_REST_MAX_PER_MINUTE < 0:
    raise ImproperlyConfigured(
        "FMP_REST_TIMEOUT must be > 0, FMP_REST_BATCH >= 1, "
        "FMP_REST_MAX_PER_MINUTE >= 0"
    )

# --- Gateway (REALTIME_*) -----------------------------------------------------------

# Start the feed inside the web process (embedded mode). Off in scaled mode, where
# `manage.py runworker fmp-feed` hosts it.
REALTIME_EMBEDDED_FEED = env_bool("REALTIME_EMBEDDED_FEED", REALTIME_MODE == "embedded")
# Built-in simulator used when FMP_API_KEY is empty.
REALTIME_SIMULATOR_RATE = env_float("REALTIME_SIMULATOR_RATE", 20.0)
REALTIME_SIMULATOR_SEED = env_int("REALTIME_SIMULATOR_SEED", 0) or None
# Off: like FMP, the simulator only knows its universe (realtime/universe.csv)
# and unknown symbols get no ticks and an unknown_symbol error. On: any symbol.
REALTIME_SIMULATOR_ANY_SYMBOL = env_bool("REALTIME_SIMULATOR_ANY_SYMBOL", False)
REALTIME_UNSUBSCRIBE_GRACE = env_float("REALTIME_UNSUBSCRIBE_GRACE", 30.0)
REALTIME_LEASE_TTL = env_float("REALTIME_LEASE_TTL", 30.0)
REALTIME_STATUS_INTERVAL = env_float("REALTIME_STATUS_INTERVAL", 2.0)
REALTIME_STATUS_STALE_AFTER = env_float("REALTIME_STATUS_STALE_AFTER", 10.0)
REALTIME_FEED_LOCK_TTL = env_float("REALTIME_FEED_LOCK_TTL", 6.0)
REALTIME_TICK_CALLBACKS = env_list("REALTIME_TICK_CALLBACKS")
REALTIME_DEFAULT_SYMBOLS = env_list("REALTIME_DEFAULT_SYMBOLS")

REALTIME_ALLOW_ANONYMOUS = env_bool("REALTIME_ALLOW_ANONYMOUS", DEBUG)
# Browser frontends on other origins (docs/frontends.md): exact origins allowed to
# open the WebSocket besides the site's own hosts, and to read /api/ (CORS).
REALTIME_ALLOWED_ORIGINS = env_list("REALTIME_ALLOWED_ORIGINS")
for _origin in REALTIME_ALLOWED_ORIGINS:
    _parts = urlsplit(_origin)
    if (
        _parts.scheme not in {"http", "https"}
        or not _parts.netloc
        or _parts.path
        or _parts.query
        or _parts.fragment
    ):
        raise ImproperlyConfigured(
            f"REALTIME_ALLOWED_ORIGINS: {_origin!r} is not an origin; "
            "use scheme://host[:port] with no path, e.g. https://app.example.com"
        )
# Connection tokens (HS256 JWT, realtime/tokens.py): unset turns the feature off.
REALTIME_CONNECTION_TOKEN_SECRET = env_str("REALTIME_CONNECTION_TOKEN_SECRET")
if 0 < len(REALTIME_CONNECTION_TOKEN_SECRET.encode()) < 32:
    raise ImproperlyConfigured(
        "REALTIME_CONNECTION_TOKEN_SECRET must be at least 32 bytes (HS256 key); "
        "generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )
REALTIME_CONNECTION_TOKEN_TTL = env_int("REALTIME_CONNECTION_TOKEN_TTL", 300)
if REALTIME_CONNECTION_TOKEN_TTL < 1:
    raise ImproperlyConfigured("REALTIME_CONNECTION_TOKEN_TTL must be >= 1 second")
# The longest a connection token may be valid (exp - now), whoever minted it.
REALTIME_CONNECTION_TOKEN_MAX_TTL = env_int(
    "REALTIME_CONNECTION_TOKEN_MAX_TTL", 24 * 3600
)
if not 1 <= REALTIME_CONNECTION_TOKEN_TTL <= REALTIME_CONNECTION_TOKEN_MAX_TTL:
    raise ImproperlyConfigured(
        "REALTIME_CONNECTION_TOKEN_MAX_TTL must be at least "
        "REALTIME_CONNECTION_TOKEN_TTL (the lifetime of the tokens this site mints)"
    )
REALTIME_MAX_SYMBOLS_PER_CONNECTION = env_int("REALTIME_MAX_SYMBOLS_PER_CONNECTION", 50)
# Per-subscription rate caps (docs/protocol.md, "Rate caps and filters"): the
# updates per second per symbol a subscription without "max_rate" gets (0:
# uncapped, every update), and the most a client may ask for (0: no ceiling; with
# one, every subscription is capped at it, the default included).
REALTIME_DEFAULT_MAX_RATE = env_float("REALTIME_DEFAULT_MAX_RATE", 0.0)
REALTIME_MAX_RATE_CEILING = env_float("REALTIME_MAX_RATE_CEILING", 0.0)
if REALTIME_DEFAULT_MAX_RATE < 0 or REALTIME_MAX_RATE_CEILING < 0:
    raise ImproperlyConfigured(
        "REALTIME_DEFAULT_MAX_RATE and REALTIME_MAX_RATE_CEILING must be >= 0 "
        "(0: uncapped / no ceiling)"
    )
# HTTP bounds of every daphne of this site, with or without a proxy in front
# (realtime/fanout/daphne_io.py, docs/deploying.md): the largest request body
# (413 past it, before it is buffered) and the time a request's headers may take.
# 16 MiB: room above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), so the API's own JSON
# 413 still answers ordinary oversized bodies; this stops the pathological ones.
REALTIME_HTTP_MAX_BODY_BYTES = env_int("REALTIME_HTTP_MAX_BODY_BYTES", 16 * 1024 * 1024)
REALTIME_HTTP_HEADER_TIMEOUT = env_float("REALTIME_HTTP_HEADER_TIMEOUT", 10.0)
# daphne's walks over every connection (reaping applications each second, timeouts
# and keepalive pings every 2 s) run in this many slices, so that none blocks the
# event loop for long (realtime/fanout/daphne_io.py); 1 keeps daphne's own walks.
REALTIME_DAPHNE_WALK_SLICES = env_int("REALTIME_DAPHNE_WALK_SLICES", 20)
# Dashboard watchlists one account may have (dashboard/services.py).
REALTIME_MAX_WATCHLISTS_PER_USER = env_int("REALTIME_MAX_WATCHLISTS_PER_USER", 20)
REALTIME_MAX_MESSAGE_BYTES = env_int("REALTIME_MAX_MESSAGE_BYTES", 4096)
REALTIME_RATE_LIMIT = env_float("REALTIME_RATE_LIMIT", 20.0)
REALTIME_RATE_BURST = env_int("REALTIME_RATE_BURST", 40)
REALTIME_FLOOD_CLOSE_AFTER = env_int("REALTIME_FLOOD_CLOSE_AFTER", 20)
REALTIME_MAX_CONNECTIONS_PER_USER = env_int("REALTIME_MAX_CONNECTIONS_PER_USER", 20)
REALTIME_STALL_TIMEOUT = env_float("REALTIME_STALL_TIMEOUT", 30.0)
# Seconds a closed stalled reader gets to read its 4009 close frame before the
# TCP connection is dropped.
REALTIME_CLOSE_GRACE = env_float("REALTIME_CLOSE_GRACE", 10.0)
# Unread bytes held for one client before its updates are conflated instead (and
# its replies held, at most 64, then it is closed 4009).
REALTIME_SEND_BUFFER_LIMIT = env_int("REALTIME_SEND_BUFFER_LIMIT", 256 * 1024)
# Write price updates as ready-made frames straight to the socket under daphne
# (realtime/fanout/daphne_io.py); false sends every update through ASGI.
REALTIME_DIRECT_WRITE = env_bool("REALTIME_DIRECT_WRITE", True)
# permessage-deflate (RFC 7692) for clients that offer it, without server context
# takeover, so each update is compressed once for all of them
# (realtime/fanout/deflate.py, docs/benchmarks.md "Compression"). Messages under
# REALTIME_WS_COMPRESSION_MIN_SIZE bytes go out uncompressed.
REALTIME_WS_COMPRESSION = env_bool("REALTIME_WS_COMPRESSION", True)
REALTIME_WS_COMPRESSION_MIN_SIZE = env_int("REALTIME_WS_COMPRESSION_MIN_SIZE", 128)
if REALTIME_WS_COMPRESSION_MIN_SIZE < 0:
    raise ImproperlyConfigured("REALTIME_WS_COMPRESSION_MIN_SIZE must be >= 0 bytes")
REALTIME_CACHE_MAX_SYMBOLS = env_int("REALTIME_CACHE_MAX_SYMBOLS", 10000)
REALTIME_CACHE_PREFIX = env_str("REALTIME_CACHE_PREFIX", "fmpsite")
# Per-symbol history for recovery on reconnect (docs/protocol.md): the last N
# updates of each symbol, no older than this many seconds (memory or Redis).
REALTIME_HISTORY_SIZE = env_int("REALTIME_HISTORY_SIZE", 1000)
REALTIME_HISTORY_SECONDS = env_float("REALTIME_HISTORY_SECONDS", 600.0)
# Scaled mode: a web process fills a forward jump in a symbol's seq (a lost
# layer message) from the history itself, up to this many missing updates; a
# wider gap reaches the client as a gap (realtime/fanout/gapfill.py). 0: never.
REALTIME_GAP_FILL_MAX = env_int("REALTIME_GAP_FILL_MAX", 1000)
# OHLCV bars built by the feed leader from trades (docs/protocol.md, "Bars"):
# the intervals clients may ask for ("" turns bars off), and what the bar history
# keeps per stream (the last N bars, no older than this many seconds; recovery and
# GET /bars read it): by default a full trading day of 1-minute bars and 24 h of
# crypto's, and the last ~25 minutes of 1-second bars.
# Off by default until the aggregator meets its cost target of +5 % feed CPU per
# tick (docs/benchmarks.md, "Bars": +19-21 % measured with 1s,1m, +9 % with 1m, at
# 5,000 ticks/s over 200 symbols); e.g. REALTIME_BAR_INTERVALS=1s,1m.
REALTIME_BAR_INTERVALS = env_str("REALTIME_BAR_INTERVALS", "")
REALTIME_BAR_RETENTION_BARS = env_int("REALTIME_BAR_RETENTION_BARS", 1600)
REALTIME_BAR_RETENTION_SECONDS = env_float("REALTIME_BAR_RETENTION_SECONDS", 86400.0)
# A bar closes this long after its end on the feed's clock, for trades in flight.
REALTIME_BAR_CLOSE_DELAY = env_float("REALTIME_BAR_CLOSE_DELAY", 0.25)
# Price alerts (realtime/alerts/, docs/protocol.md "Alerts"): active alerts one
# account may have; the webhook signing secret (X-Fmpsite-Signature, HMAC-SHA256;
# empty: SECRET_KEY); whether webhooks may target loopback/private/link-local
# addresses (off: SSRF guard; tests turn it on for their local receiver); each
# POST's timeout, the response bytes read, and how long a delivery is retried
# (exponential back-off from 1 s) before it is marked failed.
REALTIME_MAX_ACTIVE_ALERTS_PER_USER = env_int(
    "REALTIME_MAX_ACTIVE_ALERTS_PER_USER", 200
)
REALTIME_ALERT_WEBHOOK_SECRET = env_str("REALTIME_ALERT_WEBHOOK_SECRET", "")
REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool(
    "REALTIME_ALERT_WEBHOOK_ALLOW_PRIVATE", False
)
REALTIME_ALERT_WEBHOOK_TIMEOUT = env_float("REALTIME_ALERT_WEBHOOK_TIMEOUT", 5.0)
REALTIME_ALERT_WEBHOOK_MAX_RESPONSE_BYTES = env_int(
    "REALTIME_ALERT_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024
)
REALTIME_ALERT_WEBHOOK_RETRY_FOR = env_float("REALTIME_ALERT_WEBHOOK_RETRY_FOR", 600.0)
# Server processes: garbage-collector thresholds, applied with gc.freeze() once
# the application is loaded (fmpsite/gctune.py); "off" keeps CPython's 700,10,10.
try:
    REALTIME_GC_THRESHOLDS = parse_thresholds(
        env_str("REALTIME_GC_THRESHOLDS", ",".join(map(str, DEFAULT_THRESHOLDS)))
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"REALTIME_GC_THRESHOLDS={exc}") from exc

# --- REST ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    # Token first: a request without credentials where they are needed gets 401
    # with ``WWW-Authenticate: Token`` (DRF asks the first class for the challenge).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Connection tokens as Authorization: Bearer, for reads only.
        "realtime.api.authentication.ConnectionTokenAuthentication",
    ],
    # JSON by default; a browser (Accept: text/html) gets the browsable API.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "realtime.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["realtime.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "realtime.api.schema.RealtimeAutoSchema",
    "EXCEPTION_HANDLER": "realtime.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Cross-origin REST reads for the same origins as the WebSocket, without
# credentials: cookies never ride a cross-site request, so a frontend on another
# origin reads with Authorization (a connection token as Bearer, or a DRF token).
CORS_ALLOWED_ORIGINS = REALTIME_ALLOWED_ORIGINS
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False
SPECTACULAR_SETTINGS = {
    "TITLE": "fmpsite real-time price gateway",
    # The product serves no protocol page: point at the repository's own.
    "DESCRIPTION": "REST side of fmpsite: health, status, pinned subscriptions, "
    "and the latest-price cache. Prices stream over the WebSocket at "
    "`/api/v2/realtime/ws/prices` (`wss://` under TLS; `/api/` lists its URL), "
    'one JSON object per frame: `{"action": "subscribe", "symbols": [...]}`, '
    '`{"action": "unsubscribe", "symbols": [...]}`, '
    '`{"action": "get_subscriptions"}` and `{"action": "ping"}`. The full '
    "protocol is docs/protocol.md in the fmpsite repository.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar: /api/docs/ works with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: one line per event, key=value fields ----------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {
            "format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": env_str("DJANGO_LOG_LEVEL", "INFO")},
        "daphne": {"level": "WARNING"},
        "websockets": {"level": "WARNING"},
    },
}
