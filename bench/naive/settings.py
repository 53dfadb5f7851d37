"""Settings of the naive baseline app (bench only; read from BENCH_* variables)."""

import os
import tempfile

SECRET_KEY = "bench-naive-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "bench.naive.urls"
ASGI_APPLICATION = "bench.naive.asgi.application"
USE_TZ = True
# The tutorial project keeps Django's default database; channels closes stale
# connections around every consumer handler whether or not it is used.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "bench-naive.sqlite3"),
    }
}

REDIS_URL = os.environ.get("BENCH_NAIVE_REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("BENCH_NAIVE_PREFIX", "bench-naive"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SIM_URL = os.environ.get("BENCH_SIM_URL", "")
SYMBOLS = [s for s in os.environ.get("BENCH_SYMBOLS", "").split(",") if s]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
