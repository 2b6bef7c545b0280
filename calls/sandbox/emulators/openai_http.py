"""The HTTP edge both OpenAI APIs share: Bearer auth, OpenAI's error bodies, pre-header faults."""

from __future__ import annotations

import asyncio

from aiohttp import web

from calls.sandbox.emulators.base import Faults


def api_error(status: int, message: str, type_: str, code: str | None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status)


_STATUS_ERRORS = {
    429: (
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def status_error(status: int, message: str = "") -> web.Response:
    default, type_, code = _STATUS_ERRORS.get(
        status, (f"Injected HTTP {status}", "api_error", None)
    )
    response = api_error(status, message or default, type_, code)
    if status == 429:
        response.headers["retry-after"] = "1"
    return response


def authorized(request: web.Request, api_key: str | None) -> bool:
    """`api_key=None` accepts any Bearer key."""
    header = request.headers.get("Authorization", "")
    if api_key is None:
        return header.startswith("Bearer ") and len(header) > 7
    return header == f"Bearer {api_key}"


def auth_error(request: web.Request) -> web.Response:
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    shown = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
    return api_error(
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


async def hang(request: web.Request, stop: asyncio.Event) -> None:
    """Stall until the client disconnects or `stop` is set (polled: aiohttp has no awaitable
    disconnect event)."""
    while not stop.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.02)


async def gate(
    request: web.Request, faults: Faults, stop: asyncio.Event
) -> web.StreamResponse | None:
    """Apply latency / hang / status before the headers; a returned response must be sent."""
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.hang:
        await hang(request, stop)
        return web.Response(status=504)
    if faults.status is not None:
        return status_error(faults.status, getattr(faults, "message", ""))
    return None
