"""Settings for the test run: the project's settings plus a test app with handlers.

PostgreSQL by default (pytest-django creates ``test_switchyard``). Redis is a private
redis-server on a free port, started by tests/conftest.py, so tests may flush or restart it
without touching anybody's data; its URL is fixed here so worker subprocesses inherit it.
"""

import os
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchyard")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
# Prometheus's per-process files (agents_project/prometheus.py): one directory per test
# session, shared with the workers it starts, not the checkout's var/metrics.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="switchyard-metrics-"))
os.environ.setdefault("SWITCHYARD_TEST_REDIS_PORT", str(_free_port()))
# A worker on a test "host" (tests/hosts.py) reaches the private Redis through its own address.
_redis_host = os.environ.get("SWITCHYARD_TEST_REDIS_HOST", "127.0.0.1")
os.environ["REDIS_URL"] = f"redis://{_redis_host}:{os.environ['SWITCHYARD_TEST_REDIS_PORT']}/0"
# The chaos suite starts some workers on RabbitMQ (tests/chaos): they get its URL here.
os.environ["CELERY_BROKER_URL"] = (
    os.environ.get("SWITCHYARD_TEST_BROKER_URL") or os.environ["REDIS_URL"]
)

from agents_project.settings import *  # noqa: E402,F403
from agents_project.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Tests never run collectstatic; let WhiteNoise look files up on demand.
WHITENOISE_AUTOREFRESH = True
# Tests create, edit and roll back sources and routes between requests; the per-process
# lookup memo is shown by tests/ingest/test_lookups.py, which turns it on, and by a worker
# that tests/limits/test_workers.py starts with it on.
SWITCHYARD_LOOKUP_CACHE_SECONDS = float(os.environ.get("SWITCHYARD_TEST_LOOKUP_CACHE_SECONDS", "0"))
# Tests send many bad tokens from 127.0.0.1 within a minute on purpose; the throttle is shown
# by tests/security/test_api_tokens.py, which turns it on.
SWITCHYARD_API_AUTH_FAILURES_PER_MINUTE = 0
