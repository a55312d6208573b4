"""Files a person can hold in their head: no module of the apps is over 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LIMIT = 400


def test_no_app_module_is_over_400_lines() -> None:
    modules = [
        path
        for top in ("events", "handlers", "agents_project")
        for path in (ROOT / top).rglob("*.py")
        if "migrations" not in path.parts
    ]
    assert len(modules) > 100
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) > LIMIT
    }
    assert long == {}
