"""Switchyard settings. Everything that differs between machines comes from the environment."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .broker import transport_options as broker_transport_options
from .env import database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("SWITCHYARD_VAR_DIR", str(BASE_DIR / "var")))
# Local state (the default SQLite database, static files, the demo broker) lives here.
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("SWITCHYARD_ALLOW_INSECURE_KEY", False):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it, or set DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    "handlers",
    "events",
    # A user's own apps (with an `agents` module holding their handlers) join here.
    *env_list("SWITCHYARD_EXTRA_APPS", []),
]

MIDDLEWARE = [
    # Outermost, so every response gets the header, static files included.
    "agents_project.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: a webhook or API view that cannot reach the database answers 503 with
    # Retry-After (nothing was written) rather than 500.
    "agents_project.unavailable.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "agents_project.urls"
WSGI_APPLICATION = "agents_project.wsgi.application"

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
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'switchyard.sqlite3'}"), base_dir=BASE_DIR
    )
}
if DATABASES["default"].get("OPTIONS", {}).get("pool"):
    # PostgreSQL: one pool per process (web worker, Celery worker, beat). A worker's threads
    # take a connection only for each short write and give it back before a handler waits
    # (agents_project.db.release_connections), so the pool's size does not grow with worker
    # concurrency. A thread that finds the pool empty waits up to the timeout, then fails
    # with a database error that the delivery task retries. docs/operations.md, "Sizing".
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 30.0, minimum=0.1),
    }
    if (
        DATABASES["default"]["OPTIONS"]["pool"]["min_size"]
        > (DATABASES["default"]["OPTIONS"]["pool"]["max_size"])
    ):
        raise ImproperlyConfigured("DATABASE_POOL_MIN_SIZE is above DATABASE_POOL_MAX_SIZE")
else:
    # SQLite, or PostgreSQL with ?pool=false: keep connections open between requests and
    # tasks (a worker otherwise reconnects for every task); checked before reuse.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["agents_project.formats"]  # Dates to the second, with the zone.

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Switchyard ------------------------------------------------------------------------------

# Largest accepted request body for webhooks and the publish API; checked before any hashing.
SWITCHYARD_MAX_BODY_BYTES = env_int("SWITCHYARD_MAX_BODY_BYTES", 1024 * 1024, minimum=1)
# Seconds a webhook or API body may take to arrive once its headers have; a client that
# trickles it is answered 408 and its web thread freed (events/views/deadline.py). 0: no limit.
SWITCHYARD_BODY_READ_SECONDS = env_float("SWITCHYARD_BODY_READ_SECONDS", 10.0, minimum=0.0)
# Verified webhook requests a minute per source; 0 (the default) is no limit, and a source's
# settings may turn one on with "rate_limit_per_minute". Off by default: GitHub does not
# redeliver a refused webhook, so a 429 loses the event; load is absorbed by storing it, and
# pressure on handlers is managed at delivery (routes, queues), not by turning senders away.
SWITCHYARD_HOOK_RATE_LIMIT = env_int("SWITCHYARD_HOOK_RATE_LIMIT", 0, minimum=0)
# The Content-Security-Policy header of every response (agents_project/csp.py); empty: none.
# Scripts only from this origin (no inline script, no eval); inline styles (the admin's
# templates use style attributes); no plugins, no framing, forms post only here.
SWITCHYARD_CONTENT_SECURITY_POLICY = env_str(
    "SWITCHYARD_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
# Failed API token checks a minute from one client address before every API request from it
# is answered 429 for the rest of the minute (counted in Redis). 0: no throttle.
SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE = env_int(
    "SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE", 20, minimum=0
)
# The header a trusted reverse proxy puts the client's address in (X-Real-IP, or
# X-Forwarded-For whose first entry is used). Empty: the socket's peer address. Set it only
# behind a proxy that overwrites the header, or clients can pick their own address.
SWITCHYARD_CLIENT_IP_HEADER = env_str("SWITCHYARD_CLIENT_IP_HEADER", "")
# Seconds a web process keeps a webhook source and the candidate routes of an event type
# (events/lookups.py): an admin edit takes effect within this. 0: read them every time.
SWITCHYARD_LOOKUP_CACHE_SECONDS = env_float("SWITCHYARD_LOOKUP_CACHE_SECONDS", 5.0, minimum=0.0)
# Upper bounds for what a route may ask for. The broker's visibility timeout is derived from
# them, so a message that waits out the longest backoff and then runs for the longest time
# limit is never redelivered while it is still legitimately in flight.
SWITCHYARD_MAX_TIME_LIMIT = env_int("SWITCHYARD_MAX_TIME_LIMIT", 1800, minimum=1)
SWITCHYARD_MAX_BACKOFF = env_int("SWITCHYARD_MAX_BACKOFF", 3600, minimum=1)
# A running delivery's lease, renewed by its worker a third of it apart while the handler
# runs (events.leases): a dead worker's delivery is taken over within about one lease plus one
# sweep interval, whatever its time limit.
SWITCHYARD_LEASE_SECONDS = env_float("SWITCHYARD_LEASE_SECONDS", 30.0, minimum=1.0)
# The sweeper takes back deliveries whose lease lapsed and re-sends overdue messages.
SWITCHYARD_SWEEP_INTERVAL = env_float("SWITCHYARD_SWEEP_INTERVAL", 15.0, minimum=0.1)
# Seconds past its due time a waiting delivery's message may be before the sweeper sends it
# again (a queue behind a backlog gets duplicates, which a claim drops cheaply).
SWITCHYARD_SWEEP_GRACE = env_float("SWITCHYARD_SWEEP_GRACE", 30.0, minimum=0.0)
SWITCHYARD_SWEEP_BATCH = env_int("SWITCHYARD_SWEEP_BATCH", 500, minimum=1)
# The queue beat sends the sweeper to; at least one worker must consume it.
SWITCHYARD_MAINTENANCE_QUEUE = env_str("SWITCHYARD_MAINTENANCE_QUEUE", "maintenance")
# Public base URL, used when printing endpoint URLs.
SWITCHYARD_PUBLIC_URL = env_str("SWITCHYARD_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Agents ----------------------------------------------------------------------------------

# "anthropic" calls the Messages API; "offline" answers deterministically from the event's
# content with no network (the default when no ANTHROPIC_API_KEY is set, so the demo works).
SWITCHYARD_AGENT_PROVIDER = env_str(
    "SWITCHYARD_AGENT_PROVIDER", "anthropic" if env_str("ANTHROPIC_API_KEY", "") else "offline"
)
if SWITCHYARD_AGENT_PROVIDER not in {"anthropic", "offline"}:
    raise ImproperlyConfigured(
        f"SWITCHYARD_AGENT_PROVIDER={SWITCHYARD_AGENT_PROVIDER!r} is not anthropic or offline"
    )
# The model an agent uses unless it names its own; a test fails if the installed SDK lists it
# as deprecated.
SWITCHYARD_AGENT_MODEL = env_str("SWITCHYARD_AGENT_MODEL", "claude-sonnet-5-5")
# Seconds for one Messages API request. The SDK's default is 600 s.
ANTHROPIC_TIMEOUT = env_float("ANTHROPIC_TIMEOUT", 60.0, minimum=0.1)
# The SDK's own retries per request; Celery retries the whole delivery, so keep this low. At
# most max_turns * (1 + this) HTTP requests are made per delivery attempt.
SWITCHYARD_AGENT_MAX_RETRIES = env_int("SWITCHYARD_AGENT_MAX_RETRIES", 1, minimum=0)
# Input + output tokens one agent run may use unless the Agent sets max_tokens_per_run.
SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN = env_int(
    "SWITCHYARD_AGENT_MAX_TOKENS_PER_RUN", 200_000, minimum=1
)
# USD per million tokens, per model, for the cost of each traced LLM call (handlers.costs).
# Replace the whole table with SWITCHYARD_MODEL_PRICES_JSON, e.g.
# {"claude-sonnet-5-5": {"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2}}.
# A model missing from it is costed at 0, with a warning in the log.
# Anthropic's published list prices (platform docs, "Models & pricing", read 2026-11-22):
# cache writes are the 5-minute rate (1.25x input), cache reads 0.1x input. Check them against
# your own invoice; a model not listed here is costed at 0 with a warning.
SWITCHYARD_MODEL_PRICES: dict[str, dict[str, float]] = {
    "claude-opus-5-5": {"input": 4.0, "output": 20.0, "cache_write": 5.0, "cache_read": 0.4},
    "claude-sonnet-5-5": {"input": 2.0, "output": 10.0, "cache_write": 2.5, "cache_read": 0.2},
    # Haiku 5.5 is listed "from" this price; heavier use may cost more.
    "claude-haiku-5-5": {"input": 0.1, "output": 0.5, "cache_write": 0.125, "cache_read": 0.01},
    "claude-opus-5": {"input": 5.0, "output": 25.0, "cache_write": 6.25, "cache_read": 0.5},
    "claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.1},
}
if env_str("SWITCHYARD_MODEL_PRICES_JSON", "").strip():
    from handlers.costs import parse_prices

    SWITCHYARD_MODEL_PRICES = parse_prices(env_str("SWITCHYARD_MODEL_PRICES_JSON", ""))

# Built-in agents github.pr_review, support.triage, alerts.triage (handlers/agents/).
# A GitHub token lets the PR reviewer read diffs and post its review as a PR comment; without
# one it reviews the payload and keeps the comment in the outcome. It is sent only to the URL.
SWITCHYARD_GITHUB_TOKEN = env_str("SWITCHYARD_GITHUB_TOKEN", "")
SWITCHYARD_GITHUB_API_URL = env_str("SWITCHYARD_GITHUB_API_URL", "https://api.github.com")
_github_api = urlsplit(SWITCHYARD_GITHUB_API_URL)
# The token travels to this URL: https, or plain http to this machine only (a local stand-in).
if not _github_api.hostname or not (
    _github_api.scheme == "https"
    or (_github_api.scheme == "http" and _github_api.hostname in ("127.0.0.1", "localhost", "::1"))
):
    raise ImproperlyConfigured(
        f"SWITCHYARD_GITHUB_API_URL={SWITCHYARD_GITHUB_API_URL!r} must be an https URL "
        "(plain http only to 127.0.0.1, localhost or ::1)"
    )
SWITCHYARD_GITHUB_TIMEOUT = env_float("SWITCHYARD_GITHUB_TIMEOUT", 10.0, minimum=0.1)
# Support triage's category -> team queue, over its defaults, e.g. {"bug": "platform"}.
SWITCHYARD_SUPPORT_QUEUES_JSON = env_str("SWITCHYARD_SUPPORT_QUEUES_JSON", "")

# Built-in agents payments.recovery and briefing.daily (handlers/agents/) send email through
# Django's backend. Recovery emails come from SWITCHYARD_RECOVERY_FROM (else
# DEFAULT_FROM_EMAIL); the daily briefing goes to SWITCHYARD_BRIEFING_RECIPIENTS
# (comma-separated; empty: the briefing is only the delivery's outcome).
SWITCHYARD_RECOVERY_FROM = env_str("SWITCHYARD_RECOVERY_FROM", "")
SWITCHYARD_BRIEFING_RECIPIENTS = env_list("SWITCHYARD_BRIEFING_RECIPIENTS", [])
for _address in SWITCHYARD_BRIEFING_RECIPIENTS:
    if _address.count("@") != 1 or any(c.isspace() or c in "<>," for c in _address):
        raise ImproperlyConfigured(
            f"SWITCHYARD_BRIEFING_RECIPIENTS: {_address!r} is not an email address"
        )
# SMTP when EMAIL_HOST is set; otherwise the console backend prints mail to the log, so a
# checkout runs without a mail server. EMAIL_TIMEOUT bounds every wait on the server.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "switchyard@localhost")
# The folder Django's file backend writes mail to (EMAIL_BACKEND=...filebased.EmailBackend).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", "") or None

# --- Celery ----------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# After a reconnection Celery lowers the prefetch count and restores it from the thread that
# acknowledges the next task; under the threads pool that is a pool thread calling basic_qos
# on the consumer's connection while the main thread reads it, and the worker hangs for good
# (seen on a RabbitMQ restart: tests/chaos/test_faults.py). Off: a reconnected worker may
# prefetch up to its concurrency while older tasks finish, which a claim makes harmless.
CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# django-celery-beat's DatabaseScheduler plus each tick's due time and a Redis lock that lets
# only one beat send (events.schedules.scheduler; docs/triggers.md, "Schedules").
CELERY_BEAT_SCHEDULER = "events.schedules.scheduler:SwitchyardScheduler"
# Longest sleep between beat's looks at the schedule: an admin edit takes effect within it.
CELERY_BEAT_MAX_LOOP_INTERVAL = env_float("SWITCHYARD_BEAT_MAX_INTERVAL", 5.0, minimum=0.1)
# Seconds the beat lock outlives its holder's last renewal: a second beat takes over after it.
SWITCHYARD_BEAT_LOCK_TTL = env_float("SWITCHYARD_BEAT_LOCK_TTL", 30.0, minimum=1.0)
# A schedule tick run later than this many seconds after its due time, or after its schedule's
# next run time, is recorded as expired instead of run (a schedule's own "expire seconds" wins).
SWITCHYARD_SCHEDULE_EXPIRES = env_int("SWITCHYARD_SCHEDULE_EXPIRES", 600, minimum=1)
# Publishing must not hang a webhook request when the broker is down: fail fast, the
# database row is already committed and the sweeper enqueues it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_VISIBILITY_MARGIN = 600
# Redis redelivers a message not acked within visibility_timeout (see docs/architecture.md).
# Only Redis gets Redis options: the SQLAlchemy fallback passes its options to create_engine().
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(
    CELERY_BROKER_URL,
    visibility_timeout=SWITCHYARD_MAX_TIME_LIMIT
    + SWITCHYARD_MAX_BACKOFF
    + CELERY_BROKER_VISIBILITY_MARGIN,
)
CELERY_BEAT_SCHEDULE = {
    "switchyard-sweeper": {
        "task": "events.sweep",
        "schedule": SWITCHYARD_SWEEP_INTERVAL,
        "options": {"queue": SWITCHYARD_MAINTENANCE_QUEUE, "expires": SWITCHYARD_SWEEP_INTERVAL},
    },
}

# --- Logging ---------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Known secret values replaced in every line (agents_project/logs.py).
    "filters": {"redact": {"()": "agents_project.logs.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's own messages once (its default config would also print them a second time).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Every switchyard.* logger (ingest, pipeline, handlers, streams, folders, schedules).
        "switchyard": {"level": LOG_LEVEL},
    },
}
