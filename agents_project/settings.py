"""Switchyard settings. Everything that differs between machines comes from the environment."""

from __future__ import annotations

from pathlib import Path

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

# The pipeline's own settings (body limits, leases, the sweeper, ...) are declared and checked
# in events/conf.py, the agent runtime's in handlers/conf.py, and each built-in agent's in its
# own conf.py; each is read from the environment variable of its name unless set here.
# `manage.py check` names a bad one and why. Set here are those that also configure Django or
# Celery below.

# The Content-Security-Policy header of every response (agents_project/csp.py); empty: none.
# Scripts and styles only from this origin (no inline script or style, no eval); no plugins,
# no framing, forms post only here.
SWITCHYARD_CONTENT_SECURITY_POLICY = env_str(
    "SWITCHYARD_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
# Upper bounds for what a route may ask for. The broker's visibility timeout is derived from
# them, so a message that waits out the longest backoff and then runs for the longest time
# limit is never redelivered while it is still legitimately in flight.
SWITCHYARD_MAX_TIME_LIMIT = env_int("SWITCHYARD_MAX_TIME_LIMIT", 1800)
SWITCHYARD_MAX_BACKOFF = env_int("SWITCHYARD_MAX_BACKOFF", 3600)
# How often beat runs the sweeper, and the queue it sends it to (a worker must consume it).
SWITCHYARD_SWEEP_INTERVAL = env_float("SWITCHYARD_SWEEP_INTERVAL", 15.0)
SWITCHYARD_MAINTENANCE_QUEUE = env_str("SWITCHYARD_MAINTENANCE_QUEUE", "maintenance")

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
# "plain" lines, or "json": one object per line with the event, delivery and attempt ids of the
# work in hand (agents_project/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "agents_project.logs.JsonFormatter"},
    },
    # Known secret values replaced in every line; the ids of the work in hand on every record.
    "filters": {
        "redact": {"()": "agents_project.logs.RedactSecrets"},
        "context": {"()": "agents_project.logs.AddContext"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's own messages once (its default config would also print them a second time).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Every switchyard.* logger (ingest, pipeline, handlers, streams, folders, schedules).
        "switchyard": {"level": LOG_LEVEL},
    },
}
