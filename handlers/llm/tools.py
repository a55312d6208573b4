"""Tools an agent may call: typed functions turned into Messages API tool definitions.

``@tool(kind="read")`` or ``@tool(kind="write")`` reads the JSON schema from the type hints and
the description from the docstring (its first line; ``name: text`` lines under ``Args:``
describe the parameters). The model's input is untrusted: it is checked against that schema
before the function runs.

A write tool declares a keyword parameter ``idempotency_key``. It is never part of the schema
(the model cannot choose it); the runtime derives it from the delivery's idempotency key, the
tool's name and the canonical JSON of the input, so a retried or re-delivered run that makes
the same call passes the same key, and the tool can refuse to act twice.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from handlers.context import EventData

ToolKind = Literal["read", "write"]
IDEMPOTENCY_PARAM = "idempotency_key"
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # What the Messages API accepts as a tool name.

_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolInputError(ValueError):
    """The model's input does not match the tool's schema."""


# The event of the agent run whose tools are being called (set by Agent.run for its length).
_run_event: ContextVar[EventData | None] = ContextVar("switchyard_tool_event", default=None)


def current_event() -> EventData:
    """The event the calling agent run handles. A tool scopes itself with it (its source, its
    id), so nothing the model writes can point the tool at another event's data."""
    event = _run_event.get()
    if event is None:
        raise RuntimeError("no agent run is calling this tool")
    return event


@contextmanager
def running_for(event: EventData) -> Iterator[None]:
    token = _run_event.set(event)
    try:
        yield
    finally:
        _run_event.reset(token)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    kind: ToolKind
    fn: Callable[..., Any]
    input_schema: dict[str, Any]
    # A write that waits for a person: the run creates an Approval instead of acting, and the
    # write happens (once, with the same key) when someone approves it.
    requires_approval: bool = False
    # For an approval's page: what the write will do with this input ("Email to ..."), in
    # words a person can judge; None shows the input only.
    preview: Callable[[dict[str, Any]], str] | None = None

    @property
    def takes_idempotency_key(self) -> bool:
        return IDEMPOTENCY_PARAM in inspect.signature(self.fn).parameters

    def definition(self) -> dict[str, Any]:
        """The entry for the ``tools`` list of a Messages API request."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }

    def idempotency_key(self, delivery_key: str, arguments: Mapping[str, Any]) -> str:
        """Stable for one (delivery, tool, input): the same call in a re-run gets the same key."""
        material = "\x1f".join((delivery_key, self.name, canonical_json(arguments)))
        return f"{self.name}:{hashlib.sha256(material.encode()).hexdigest()}"

    def invoke(self, arguments: Any, *, delivery_key: str) -> Any:
        """Check ``arguments`` against the schema, then call the function."""
        checked = validate(self.input_schema, arguments)
        if self.takes_idempotency_key:
            return self.fn(**checked, idempotency_key=self.idempotency_key(delivery_key, checked))
        return self.fn(**checked)

    def invoke_with_key(self, arguments: Any, *, idempotency_key: str) -> Any:
        """Call a write tool with a key derived earlier (an approved action, run later)."""
        checked = validate(self.input_schema, arguments)
        return self.fn(**checked, idempotency_key=idempotency_key)


def tool(
    *,
    kind: ToolKind,
    name: str | None = None,
    requires_approval: bool = False,
    preview: Callable[[dict[str, Any]], str] | None = None,
) -> Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a :class:`Tool` (see the module docstring)."""
    if kind not in ("read", "write"):
        raise ValueError(f"tool kind must be 'read' or 'write', not {kind!r}")
    if requires_approval and kind != "write":
        raise ValueError("only a write tool can require approval")

    def wrap(fn: Callable[..., Any]) -> Tool:
        tool_name = name or fn.__name__
        if not NAME_RE.fullmatch(tool_name):
            raise ValueError(f"tool name {tool_name!r} must match {NAME_RE.pattern}")
        description, param_docs = parse_docstring(fn.__doc__ or "")
        if not description:
            raise ValueError(f"tool {tool_name!r} needs a docstring: the model reads it")
        schema = input_schema(fn, param_docs)
        declared = IDEMPOTENCY_PARAM in inspect.signature(fn).parameters
        if kind == "write" and not declared:
            raise ValueError(
                f"write tool {tool_name!r} must take a keyword parameter {IDEMPOTENCY_PARAM!r} "
                "and key its side effect on it"
            )
        return Tool(
            name=tool_name,
            description=description,
            kind=kind,
            fn=fn,
            input_schema=schema,
            requires_approval=requires_approval,
            preview=preview,
        )

    return wrap


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- Schema from type hints -------------------------------------------------------------------


def input_schema(fn: Callable[..., Any], param_docs: Mapping[str, str]) -> dict[str, Any]:
    hints = get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.name == IDEMPOTENCY_PARAM:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{fn.__name__}: parameter {param.name!r} must be a named parameter")
        if param.name not in hints:
            raise TypeError(f"{fn.__name__}: parameter {param.name!r} needs a type hint")
        prop = type_schema(hints[param.name], where=f"{fn.__name__}.{param.name}")
        if param.name in param_docs:
            prop["description"] = param_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif param.default is not None:
            prop["default"] = param.default
        properties[param.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def type_schema(hint: Any, *, where: str) -> dict[str, Any]:
    origin = get_origin(hint)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin is Literal:
        values = list(get_args(hint))
        kinds = {_SCALARS.get(type(v)) for v in values}
        if len(kinds) != 1 or None in kinds:
            raise TypeError(f"{where}: Literal values must share one of str, int, float, bool")
        return {"type": kinds.pop(), "enum": values}
    if origin in (Union, types.UnionType):
        # Optional[X]: the parameter may be left out; its default says what that means.
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return type_schema(args[0], where=where)
        raise TypeError(f"{where}: unions other than Optional[X] are not supported")
    if origin is list:
        (item,) = get_args(hint) or (None,)
        if item is None:
            raise TypeError(f"{where}: say what the list holds, e.g. list[str]")
        return {"type": "array", "items": type_schema(item, where=where)}
    if hint is dict or origin is dict:
        return {"type": "object"}
    raise TypeError(f"{where}: type {hint!r} is not supported in a tool signature")


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first line, and ``{name: text}`` from an ``Args:`` section."""
    lines = inspect.cleandoc(doc).splitlines()
    description = lines[0].strip() if lines else ""
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    arg_indent = 0
    for line in lines[1:]:
        if _ARGS_HEADER.match(line):
            in_args, current = True, None
            continue
        if not in_args or not line.strip():
            current = None
            continue
        if not line.startswith(" "):  # the next section
            in_args = False
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line.strip())
        if match and (current is None or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            params[current] = match.group(2).strip()
        elif current is not None:  # a continuation line
            params[current] = f"{params[current]} {line.strip()}".strip()
    return description, params


# --- Checking the model's input ---------------------------------------------------------------


def validate(schema: Mapping[str, Any], arguments: Any) -> dict[str, Any]:
    """The arguments, checked against a schema made by :func:`input_schema`."""
    if not isinstance(arguments, dict):
        raise ToolInputError(f"input must be a JSON object, got {type(arguments).__name__}")
    properties: Mapping[str, Any] = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolInputError(f"unknown parameter(s): {', '.join(unknown)}")
    missing = [name for name in schema["required"] if name not in arguments]
    if missing:
        raise ToolInputError(f"missing required parameter(s): {', '.join(missing)}")
    for key, value in arguments.items():
        _check(properties[key], value, key)
    return dict(arguments)


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _check(schema: Mapping[str, Any], value: Any, path: str) -> None:
    expected = schema["type"]
    ok = isinstance(value, _PY_TYPES[expected])
    if expected in ("integer", "number") and isinstance(value, bool):
        ok = False
    if not ok:
        raise ToolInputError(f"{path}: expected {expected}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolInputError(f"{path}: must be one of {schema['enum']!r}")
    if expected == "array":
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]")
