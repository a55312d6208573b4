"""What every webhook kind shares: the request it is given, what it answers (an Incoming to
store, a Reply to send back, or a Rejection), the verification of its signature (WebhookKind),
strict JSON and form parsing, timestamp windows.

The body's size limit is not here: the view reads the body under SWITCHYARD_MAX_BODY_BYTES
(events/views/common.py, 413) before any kind hashes or parses it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from ..publish import PublishError, check_payload
from .options import Option

log = logging.getLogger("switchyard.ingest")

# The new secret and the one it replaces (Source.secrets is newest first); older ones are no
# longer accepted.
ROTATION_SECRETS = 2
# How far a signed timestamp may be from our clock, either way, where a scheme signs one.
TOLERANCE_SECONDS = 300
MISMATCH = "signature does not match"
NO_SECRET = "this source has no secret configured"  # noqa: S105 (a message)
JSON_TYPES = frozenset({"application/json", ""})
FORM_TYPE = "application/x-www-form-urlencoded"
# A form body with more fields than this is not a webhook.
MAX_FORM_FIELDS = 200

# Seconds since the epoch, as time.time() gives them. Kinds with a timestamp window take one, so
# tests can pin "now".
Clock = Callable[[], float]


class Rejection(Exception):
    """A request we refuse, with the HTTP status and a reason safe to show the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Incoming:
    """An event to store. ``ignored`` stores it without routing it anywhere (Slack messages
    from our own bot: kept for the record, never a trigger). ``payload_checked``: the payload
    is (part of) what parse_json_object() returned, so check_payload() has run on it."""

    type: str
    payload: dict[str, Any]
    external_id: str | None = None
    partition_key: str | None = None
    schema_version: int = 1
    ignored: bool = False
    payload_checked: bool = False
    # A request with no id of its own, from a kind that dedupes such requests by their body:
    # the body's digest, and the seconds within which a copy is a duplicate (events/replays.py).
    replay_digest: str | None = None
    replay_window: int = 0


@dataclass(frozen=True)
class Reply:
    """An answer the sender expects instead of storing anything (Slack's url_verification)."""

    body: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class WebhookRequest:
    """What a kind sees of a POST: the raw body bytes and headers, and its source's config."""

    headers: Mapping[str, str]
    body: bytes
    content_type: str
    secrets: list[str]
    settings: Mapping[str, Any] = field(default_factory=dict)


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


def envelope(document: dict[str, Any], *, checked: bool = False) -> Incoming:
    """The generic envelope: {"type", "payload", "id"?, "partition_key"?, "schema_version"?}.
    ``checked``: ``document`` came from parse_json_object(), which checked all of it."""
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
        payload_checked=checked,
    )


def form_fields(body: bytes) -> dict[str, str]:
    """Parse an application/x-www-form-urlencoded body; a repeated field is a 400."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise Rejection(400, "form body is not valid URL-encoded UTF-8") from None
    except ValueError:
        raise Rejection(400, f"form body has more than {MAX_FORM_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise Rejection(400, f"form field {name!r} is repeated")
        fields[name] = value
    return fields


def json_form_field(body: bytes, name: str) -> dict[str, Any]:
    """The JSON object carried in one field of a form body (GitHub's and Slack's ``payload``)."""
    value = form_fields(body).get(name)
    if value is None:
        raise Rejection(400, f"form body has no {name!r} field")
    return parse_json_object(value.encode())


def required_header(headers: Mapping[str, str], name: str, status: int = 401) -> str:
    """A header's value; missing or empty is a ``status`` (401 for what proves the sender)."""
    value = headers.get(name, "")
    if not value.strip():
        raise Rejection(status, f"missing {name} header")
    return value


# Whole seconds: a millisecond timestamp (13 digits) or a fraction is refused, not guessed at.
SECONDS_RE = re.compile(r"[0-9]{1,10}")


def check_timestamp(
    value: str, header: str, now: float, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Refuse a signed timestamp that is malformed (400) or outside the window (401)."""
    if not SECONDS_RE.fullmatch(value.strip()):
        raise Rejection(400, f"{header} must be a Unix time in whole seconds")
    if abs(now - int(value)) > tolerance:
        raise Rejection(401, f"{header} is more than {tolerance} s from our clock")


def type_segment(value: str) -> str:
    """Part of an event type, from a sender's free-form name: characters publish() does not
    take in a type become ``_``, so a genuine event is never refused for its name."""
    return re.sub(r"[^A-Za-z0-9_.:/\-]", "_", value)


def event_type(*parts: str | None) -> str:
    return ".".join(type_segment(part) for part in parts if part)[:200]


def string_at(document: Any, *path: str) -> str | None:
    """``document[path[0]][path[1]]...`` when every step is an object and the end a non-empty
    string, else None."""
    value = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def system_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class Signed:
    """What a request says was signed: the bytes the sender's HMAC covers, and the signatures
    it sent, each in the form WebhookKind.digest() gives (any one may match)."""

    content: bytes
    signatures: list[bytes]


def matches_any(expected: Iterable[bytes], signatures: Sequence[bytes]) -> bool:
    """Whether one of ``signatures`` is one of ``expected``. Every pair is compared, in constant
    time, so the time taken does not tell which secret (or which signature) matched."""
    matched = False
    for want in expected:
        for given in signatures:
            matched |= hmac.compare_digest(want, given)
    return matched


class WebhookKind:
    """A sender's scheme: how a request is signed, and what it becomes.

    A kind says where its signature is (``signed()``: the signed bytes and the signatures, or a
    Rejection for a missing, malformed or stale header) and what a verified body becomes
    (``read()``). The base does the rest once for every kind: the source's first
    ``ROTATION_SECRETS`` secrets, each made into a key (``signing_key()``) and a digest
    (``digest()``, hex HMAC-SHA256 unless the scheme says otherwise), compared in constant time
    with every signature the request carries. ``options`` are the Source.settings keys the kind
    reads (create_source and the admin take and check them from here).
    """

    name: ClassVar[str]
    # The header carrying the signature, and the one carrying the signed Unix time where the
    # scheme sends it in a header of its own (None: no timestamp, or not in a fixed header).
    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str | None] = None
    options: ClassVar[tuple[Option, ...]] = ()
    # What a request carrying no signature of this scheme at all is told.
    no_signature: ClassVar[str] = MISMATCH

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock

    # --- what a kind defines ----------------------------------------------------------------

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        """The signed content and the signatures, from the headers; check a timestamp here."""
        raise NotImplementedError

    def read(self, request: WebhookRequest) -> Incoming | Reply:
        """What the verified body becomes (400 for what the kind cannot store)."""
        raise NotImplementedError

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        """The headers a sender signs ``body`` with at ``now`` (the signature, and the
        timestamp or id it signs): what the generated tests send."""
        raise NotImplementedError

    def signing_key(self, secret: str) -> bytes | None:
        """The HMAC key in ``secret``, or None if it holds none."""
        return secret.encode()

    def digest(self, key: bytes, content: bytes) -> bytes:
        return hmac.new(key, content, hashlib.sha256).hexdigest().encode()

    def secret_problem(self, secret: str) -> str | None:
        """Why ``secret`` cannot be this kind's signing secret, or None if it can."""
        return None

    # --- the same for every kind ------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> Incoming | Reply:
        """Verify the signature over the raw body (a 401 Rejection), then read the body."""
        self.verify(request)
        return self.read(request)

    def verify(self, request: WebhookRequest) -> None:
        signed = self.signed(request, self.clock())
        if not request.secrets:
            raise Rejection(401, NO_SECRET)
        secrets = request.secrets[:ROTATION_SECRETS]
        keys = [key for key in map(self.signing_key, secrets) if key is not None]
        if not keys:
            # The operator's mistake, not the sender's: say so in the log (never the secret).
            log.warning(
                "%s source has no valid secret among its first two: %s",
                self.name,
                self.secret_problem(secrets[0]),
            )
        if not signed.signatures:
            raise Rejection(401, self.no_signature)
        if not matches_any((self.digest(key, signed.content) for key in keys), signed.signatures):
            raise Rejection(401, MISMATCH)

    def settings_problem(self, settings: Mapping[str, Any]) -> str | None:
        """What is wrong with a source's settings for this kind, or None."""
        for option in self.options:
            problem = option.problem(settings)
            if problem:
                return problem
        return None

    def checked_settings(self, settings: Mapping[str, Any]) -> Mapping[str, Any]:
        """``settings``, or a 503 when a source was stored with values the kind cannot use:
        the sender is not at fault, and nothing is stored."""
        problem = self.settings_problem(settings)
        if problem:
            raise Rejection(503, f"this source's settings are invalid: {problem}")
        return settings
