"""What every webhook kind shares: the parsed result, the rejection, strict JSON parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..publish import PublishError, check_payload


class Rejection(Exception):
    """A request we refuse, with the HTTP status and a reason safe to show the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Incoming:
    type: str
    payload: dict[str, Any]
    external_id: str | None = None
    partition_key: str | None = None
    schema_version: int = 1


class WebhookKind(Protocol):
    name: str

    def parse(
        self, headers: Mapping[str, str], body: bytes, secrets: list[str], content_type: str
    ) -> Incoming:
        """Verify the signature over ``body`` (raise Rejection(401)) and parse it."""
        ...


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object; anything else is a 400 with the reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise Rejection(400, "JSON is nested too deeply") from None
    except ValueError as exc:
        # Covers malformed JSON, NaN/Infinity and integers too long to convert.
        raise Rejection(400, f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Rejection(400, "body must be a JSON object")
    try:
        check_payload(value)
    except PublishError as exc:
        raise Rejection(400, str(exc)) from None
    return value


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def envelope(document: dict[str, Any]) -> Incoming:
    """The generic envelope: {"type", "payload", "id"?, "partition_key"?, "schema_version"?}."""
    missing = [name for name in ("type", "payload") if name not in document]
    if missing:
        raise Rejection(400, f"missing field(s): {', '.join(missing)}")
    unknown = set(document) - {"type", "payload", "id", "partition_key", "schema_version", "source"}
    if unknown:
        raise Rejection(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    return Incoming(
        type=document["type"],
        payload=document["payload"],
        external_id=document.get("id"),
        partition_key=document.get("partition_key"),
        schema_version=document.get("schema_version", 1),
    )
