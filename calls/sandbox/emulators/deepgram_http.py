"""The HTTP edge Deepgram's listen and speak share: Token/Bearer auth and Deepgram's error bodies."""

from __future__ import annotations

import uuid

from aiohttp import web


def authorized(request: web.Request, api_key: str | None) -> bool:
    """`api_key=None` accepts any key."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("token", "bearer") or not key:
        return False
    return api_key is None or key.strip() == api_key


def error(status: int, code: str, msg: str) -> web.Response:
    body = {"err_code": code, "err_msg": msg, "request_id": str(uuid.uuid4())}
    return web.json_response(body, status=status)
