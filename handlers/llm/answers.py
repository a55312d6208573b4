"""Reading a structured answer out of a model's final text.

The built-in agents ask for a JSON object as their answer. ``json_answer`` finds the first
JSON object in the text (bare, or in a ```json fence, with prose around it), and checks the
fields the agent needs. An answer that does not parse or lacks a field raises
``AnswerFormatError``, a ``PermanentError``: the delivery is dead-lettered with the reason and
the model's text, and an operator can requeue it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from handlers.errors import PermanentError

_decoder = json.JSONDecoder()
PREVIEW_CHARS = 300


class AnswerFormatError(PermanentError):
    """The model's final answer is not the JSON object the agent asked for."""


def find_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``, or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                return value
        start = text.find("{", start + 1)
    return None


def json_answer(
    text: str,
    *,
    required: Mapping[str, type | tuple[type, ...]],
    choices: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """The answer's JSON object, with each ``required`` field present and of its type, and each
    field in ``choices`` one of the allowed values (compared lower-cased)."""
    answer = find_json_object(text)
    preview = text[:PREVIEW_CHARS]
    if answer is None:
        raise AnswerFormatError(f"the answer holds no JSON object: {preview!r}")
    for name, kind in required.items():
        if name not in answer:
            raise AnswerFormatError(f"the answer lacks {name!r}: {preview!r}")
        if not isinstance(answer[name], kind) or (isinstance(answer[name], bool) and kind is int):
            raise AnswerFormatError(
                f"the answer's {name!r} is {type(answer[name]).__name__}: {preview!r}"
            )
    for name, allowed in (choices or {}).items():
        value = answer.get(name)
        if not isinstance(value, str) or value.lower() not in allowed:
            raise AnswerFormatError(
                f"the answer's {name!r} is {value!r}, not one of {sorted(allowed)}"
            )
        answer[name] = value.lower()
    return answer
