"""The Deepgram SDK client both Deepgram providers use, with every host replaceable (emulators)."""

from __future__ import annotations

from typing import Any

try:
    from deepgram import AsyncDeepgramClient
    from deepgram.core.api_error import ApiError
    from deepgram.environment import DeepgramClientEnvironment
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Deepgram providers need the Deepgram SDK: pip install deepgram-sdk==7.16.0"
    ) from exc

__all__ = ["ApiError", "AsyncDeepgramClient", "deepgram_client", "describe"]


def deepgram_client(*, api_key: str, base_url: str = "", **kw: Any) -> AsyncDeepgramClient:
    """An AsyncDeepgramClient; `base_url` (http(s):// or ws(s)://host[:port]) replaces all hosts."""
    if base_url:
        scheme, sep, rest = base_url.rstrip("/").partition("://")
        if not sep:
            scheme, rest = "https", scheme
        secure = scheme in ("https", "wss")
        http, ws = ("https", "wss") if secure else ("http", "ws")
        kw["environment"] = DeepgramClientEnvironment(
            base=f"{http}://{rest}",
            production=f"{ws}://{rest}",
            agent=f"{ws}://{rest}",
            agent_rest=f"{http}://{rest}",
        )
    return AsyncDeepgramClient(api_key=api_key, **kw)


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "server closed the connection"
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status_code}: {exc.body}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
