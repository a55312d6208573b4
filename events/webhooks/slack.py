"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{raw body}">``, with
``X-Slack-Request-Timestamp`` within 300 s of our clock.

Three shapes arrive on one endpoint:

- Events API (JSON). ``url_verification`` is answered with its challenge, and only once the
  request is correctly signed; nothing is stored. ``event_callback`` becomes
  ``slack.<event type>`` (``slack.message``, ``slack.app_mention``), external id ``event_id``, so
  a retry (``X-Slack-Retry-Num``) is a duplicate; partition key the channel. An event posted by
  a bot (``bot_id``, subtype ``bot_message``) or by the source's configured ``bot_user`` is
  stored as ignored: an agent replying in Slack must not trigger itself.
- Slash commands (form-encoded): ``slack.slash_command``, external id ``trigger_id``.
- Interactivity (form-encoded, JSON in ``payload``): ``slack.<payload type>``
  (``slack.block_actions``, ``slack.view_submission``), external id ``trigger_id`` if any.

A request with no id of its own (``app_rate_limited``, a ``view_closed`` interaction, a command
without ``trigger_id``) gets ``sig:<timestamp>:<body digest>``: Slack signs both, so a replay
inside the 300 s window is a duplicate, and outside it the timestamp check refuses it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..dedupe_keys import signed_request_id
from .base import (
    FORM_TYPE,
    JSON_TYPES,
    Incoming,
    Rejection,
    Reply,
    Signed,
    WebhookKind,
    WebhookRequest,
    check_timestamp,
    event_type,
    form_fields,
    media_type,
    parse_json_object,
    required_header,
    string_at,
)
from .options import Option
from .registry import register

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
VERSION = "v0"
# Source.settings key: the bot's user id (U...), whose messages are stored as ignored.
BOT_USER_SETTING = "bot_user"
BOT_USER = Option(
    BOT_USER_SETTING,
    flag="slack-bot-user",
    help="the bot's user id (U...); its messages are stored as ignored",
)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    basestring = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()


def from_a_bot(event: dict[str, Any], bot_user: str | None) -> bool:
    """Posted by a bot or by our own bot user (also inside an edited message)."""
    for item in (event, event.get("message")):
        if not isinstance(item, dict):
            continue
        if item.get("bot_id") or item.get("subtype") == "bot_message":
            return True
        if bot_user is not None and string_at(item, "user") == bot_user:
            return True
    return False


def events_api(document: dict[str, Any], settings: Mapping[str, Any]) -> Incoming | Reply:
    kind = string_at(document, "type")
    if kind == "url_verification":
        challenge = string_at(document, "challenge")
        if challenge is None:
            raise Rejection(400, "url_verification has no challenge")
        return Reply({"challenge": challenge})
    if kind == "event_callback":
        event = document.get("event")
        if not isinstance(event, dict) or string_at(event, "type") is None:
            raise Rejection(400, "event_callback has no event type")
        event_id = string_at(document, "event_id")
        if event_id is None:
            raise Rejection(400, "event_callback has no event_id")
        bot_user = settings.get(BOT_USER_SETTING)
        return Incoming(
            type=event_type("slack", string_at(event, "type")),
            payload=document,
            external_id=event_id,
            partition_key=string_at(event, "channel"),
            ignored=from_a_bot(event, bot_user if isinstance(bot_user, str) else None),
        )
    if kind is None:
        raise Rejection(400, "Slack request has no type")
    # app_rate_limited and whatever Slack adds next: stored, typed, no dedupe key.
    return Incoming(type=event_type("slack", kind), payload=document)


def form_request(body: bytes) -> Incoming:
    fields = form_fields(body)
    if "payload" in fields:
        interaction = parse_json_object(fields["payload"].encode())
        interaction_type = string_at(interaction, "type")
        if interaction_type is None:
            raise Rejection(400, "interactivity payload has no type")
        return Incoming(
            type=event_type("slack", interaction_type),
            payload=interaction,
            external_id=string_at(interaction, "trigger_id"),
            partition_key=string_at(interaction, "channel", "id"),
        )
    if "command" in fields:
        return Incoming(
            type="slack.slash_command",
            payload=dict(fields),
            external_id=fields.get("trigger_id") or None,
            partition_key=fields.get("channel_id") or None,
        )
    raise Rejection(400, "form body is neither a slash command nor an interactivity payload")


@register
class SlackKind(WebhookKind):
    name = "slack"
    signature_header = SIGNATURE_HEADER
    timestamp_header = TIMESTAMP_HEADER
    options = (BOT_USER,)

    def signed(self, request: WebhookRequest, now: float) -> Signed:
        given = required_header(request.headers, SIGNATURE_HEADER).strip().lower()
        timestamp = required_header(request.headers, TIMESTAMP_HEADER).strip()
        check_timestamp(timestamp, TIMESTAMP_HEADER, now)
        prefix = f"{VERSION}="
        return Signed(
            content=f"{VERSION}:{timestamp}:".encode() + request.body,
            signatures=[given[len(prefix) :].encode()] if given.startswith(prefix) else [],
        )

    def read(self, request: WebhookRequest) -> Incoming | Reply:
        content_type = media_type(request.content_type)
        parsed: Incoming | Reply
        if content_type in JSON_TYPES:
            parsed = events_api(parse_json_object(request.body), request.settings)
        elif content_type == FORM_TYPE:
            parsed = form_request(request.body)
        else:
            raise Rejection(415, f"content type must be application/json or {FORM_TYPE}")
        if isinstance(parsed, Incoming) and parsed.external_id is None:
            timestamp = request.headers.get(TIMESTAMP_HEADER, "")
            parsed = replace(parsed, external_id=signed_request_id(timestamp, request.body))
        return parsed

    def sign_request(self, secret: str, body: bytes, now: int) -> dict[str, str]:
        return {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(secret, now, body)}
