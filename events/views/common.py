"""Helpers shared by the JSON endpoints: bounded body reading and JSON answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from events import conf

from ..publish import PublishResult
from ..webhooks.base import Rejection
from .deadline import body_deadline


def answer(http_status: int, /, **body: Any) -> JsonResponse:
    return JsonResponse(body, status=http_status)


def error(http_status: int, message: str, /, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=http_status)


def method_not_allowed(allowed: str) -> JsonResponse:
    """405 with the Allow header HTTP requires on that answer."""
    response = error(405, f"use {allowed}")
    response["Allow"] = allowed
    return response


def read_body(request: HttpRequest) -> bytes:
    """Read the raw body, refusing one over the limit before anything hashes or parses it,
    and one that takes longer than SWITCHYARD_BODY_READ_SECONDS to arrive (408)."""
    seconds = conf.BODY_READ_SECONDS.get()
    with body_deadline(request.META, seconds) as cut:
        try:
            body = _read_body(request)
        except Rejection:
            raise
        except Exception:
            if cut is None or not cut.is_set():
                raise
            body = b""  # the reader failed on the socket the deadline cut
        if cut is not None and cut.is_set():
            raise Rejection(408, f"the body did not arrive within {seconds:g} s")
    return body


def _read_body(request: HttpRequest) -> bytes:
    limit = conf.MAX_BODY_BYTES.get()
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return _read_chunked(request, limit)
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise Rejection(400, "Content-Length is not a number") from None
        if length > limit:
            raise Rejection(413, f"body is larger than the limit of {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Rejection(413, f"body is larger than the limit of {limit} bytes")
    return body


def accepted(result: PublishResult) -> JsonResponse:
    """202 with the new event's id, or 200 with the original id for a duplicate."""
    if not result.created:
        return answer(200, id=str(result.event.id), duplicate=True)
    return answer(
        202, id=str(result.event.id), status=result.event.status, deliveries=result.deliveries
    )


def _read_chunked(request: HttpRequest, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, which has no Content-Length: Django's
    ``request.read()`` would give nothing (it reads Content-Length bytes). gunicorn de-chunks
    the body into ``wsgi.input`` and ends it (``wsgi.input_terminated``), so it is read from
    there, up to the limit. A server that does not end the stream could leave the read
    waiting for bytes that never come: there the sender is asked for a length instead."""
    if not request.META.get("wsgi.input_terminated"):
        raise Rejection(411, "this server needs a Content-Length; send the body unchunked")
    stream = request.META["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    if size > limit:
        raise Rejection(413, f"body is larger than the limit of {limit} bytes")
    return b"".join(parts)
