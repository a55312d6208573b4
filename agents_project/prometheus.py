"""prometheus_client in multiprocess mode, for every process: the web's gunicorn workers and
Celery's worker (and its prefork children) each write their counters and histograms to files in
one directory, and ``/metrics`` sums them (events/views/metrics.py).

The directory is ``PROMETHEUS_MULTIPROC_DIR`` if set, else ``<SWITCHYARD_VAR_DIR>/metrics``; it
must be the same for the web and the workers of one host, and emptied when they are all
(re)started (``manage.py up`` does). Import prometheus_client only through this module: the
mode is chosen when prometheus_client is first imported.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings

DIRECTORY = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(settings.VAR_DIR) / "metrics")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(DIRECTORY)
DIRECTORY.mkdir(parents=True, exist_ok=True)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "CollectorRegistry",
    "Counter",
    "Histogram",
    "generate_latest",
    "multiprocess",
    "reset",
]


def reset(directory: Path = DIRECTORY) -> None:
    """Empty the directory, before the processes that write to it start."""
    if directory.is_dir():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
