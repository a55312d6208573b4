"""Files a person can hold in their head: no module of the apps, the benchmarks or the tests is
over 400 lines. Migrations, which makemigrations writes, are left out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LIMIT = 400
TOPS = ("events", "handlers", "agents_project", "bench", "tests")


def test_no_module_is_over_400_lines() -> None:
    modules = [
        path
        for top in TOPS
        for path in (ROOT / top).rglob("*.py")
        if "migrations" not in path.parts
    ]
    # Each folder was searched: a misspelt one would find no module and pass.
    assert {path.relative_to(ROOT).parts[0] for path in modules} == set(TOPS)
    assert len(modules) > 300
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text().splitlines())) > LIMIT
    }
    assert long == {}
