"""What the docs and the code's comments name exists: every file path under the project's own
directories, and every dotted ``events.``/``handlers.``/``agents_project.`` name (a module, or
an attribute of one, a model label, or a Celery task name)."""

from __future__ import annotations

import importlib
import io
import re
import tokenize
from pathlib import Path

from celery import current_app
from django.apps import apps

import events.tasks  # noqa: F401  (registers the task names the docs use)

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
CODE = sorted(
    path
    for top in ("events", "handlers", "agents_project", "bench", "tests")
    for path in (ROOT / top).rglob("*.py")
    if "migrations" not in path.parts
)
DOTTED = re.compile(r"(?<![\w./-])((?:events|handlers|agents_project)(?:\.[A-Za-z_]\w*)+)")
PATH = re.compile(
    r"`((?:events|handlers|agents_project|bench|tests|scripts|templates|docs)/[\w./-]*)"
    r"(?:::(\w+))?`"
)


def _resolves(name: str) -> bool:
    if name in current_app.tasks:
        return True
    parts = name.split(".")
    if len(parts) == 2 and parts[1][:1].isupper():
        try:
            apps.get_model(name)
            return True
        except LookupError:
            pass
    for i in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(found, attr):
                return False
            found = getattr(found, attr)
        return True
    return False


def _comments_and_strings(path: Path) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    kinds = (tokenize.COMMENT, tokenize.STRING)
    return [(tok.start[0], tok.string) for tok in tokens if tok.type in kinds]


def _missing_names(lines: list[tuple[int, str]], where: Path) -> list[str]:
    return [
        f"{where.relative_to(ROOT)}:{number}: {match[1]}"
        for number, text in lines
        for match in DOTTED.finditer(text)
        if not _resolves(match[1].rstrip("."))
    ]


def test_every_dotted_name_in_the_docs_and_comments_exists() -> None:
    missing = []
    for doc in DOCS:
        missing += _missing_names(list(enumerate(doc.read_text().splitlines(), 1)), doc)
    for path in CODE:
        missing += _missing_names(_comments_and_strings(path), path)
    assert missing == []


def _exists(path: str, test: str | None) -> bool:
    found = ROOT / path.rstrip("/")
    if not found.exists():
        return False
    return test is None or f"def {test}(" in found.read_text()


def test_every_project_path_and_test_the_docs_name_exists() -> None:
    missing = [
        f"{doc.relative_to(ROOT)}: {match[0]}"
        for doc in DOCS
        for match in PATH.finditer(doc.read_text())
        if "*" not in match[1] and not _exists(match[1], match[2])
    ]
    assert missing == []
