"""Readiness before the first call: providers built and models loaded on the server's own event
loop, and each outbound call's greeting synthesised while the phone rings."""

from __future__ import annotations

import asyncio
import importlib
import logging

from django.conf import settings
from django.urls import get_resolver
from django.utils.module_loading import import_string

from calls.live import providers as registry
from calls.pipeline.tts import synthesize_cached
from calls.providers.stt.base import STTOptions, STTSession
from calls.providers.tts.base import TTSOptions

log = logging.getLogger(__name__)
# Modules that dependencies import on first use, not when they are imported themselves.
LAZY_MODULES = (
    "httpcore",  # httpx's transport: the first client (OpenAI's: httpcore2)
    "httpcore2",
    "h11",
    "anyio._backends._asyncio",  # the async backend of both: the first request
    "twilio.rest.api.v2010.account",  # the REST resources: the first `client.calls`
)
_loop: asyncio.AbstractEventLoop | None = None
_tasks: set = set()  # asyncio tasks and concurrent futures kept alive until done


def remember_loop() -> None:
    """Called from the ASGI app on its loop: provider clients are bound to the loop that made them,
    so everything here runs on it."""
    global _loop
    loop = asyncio.get_running_loop()
    if _loop is loop:
        return
    _loop = loop
    _tasks.add(loop.create_task(_warm()))


def _serving() -> bool:
    return _loop is not None and _loop.is_running() and not _loop.is_closed()


def import_backends() -> None:
    """Import every configured provider module now (SDK imports take hundreds of ms)."""
    for conf in settings.PROVIDERS.values():
        import_string(conf["BACKEND"])


def import_lazy_modules() -> None:
    """Import now what the stack would import on first use: the URLconf (views, serializers, DRF,
    the API schema: ~400 modules, loaded by the first HTTP request) and LAZY_MODULES. The first
    call after a start does not pay for them, and they are loaded before the startup heap is
    frozen (calls.core.heap), so the garbage collector never walks them again."""
    get_resolver().url_patterns  # noqa: B018 - the property loads the URLconf
    for name in LAZY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a dependency moved its modules: it is imported on first use again
            log.info("lazily imported module %s not found", name)


async def _warm() -> None:
    for kind in ("stt", "llm", "tts", "tts_fallback"):
        try:
            # Built off the loop (constructors may load models); async clients bind on first use.
            provider = await asyncio.to_thread(registry.provider, kind)
            warm = getattr(provider, "warm_up", None)
            if warm is not None and kind in ("stt", "tts"):
                await (warm(TTSOptions()) if kind == "tts" else warm())
        except Exception:
            log.exception("warming the %s provider failed", kind)


def prefetch_greeting(text: str, options: TTSOptions) -> None:
    """Synthesise `text` into the shared audio cache, from any thread, without waiting."""
    if not text or not _serving():
        return

    async def run() -> None:
        try:
            await synthesize_cached(registry.provider("tts"), options, text)
        except Exception as exc:
            log.warning("greeting pre-synthesis failed: %s", exc)

    asyncio.run_coroutine_threadsafe(run(), _loop)


# STT sessions opened while a call rings, by call UUID: (session, deadline on the loop's clock).
_stt_sessions: dict[str, tuple[STTSession, float]] = {}
PREOPEN_TTL_S = 120.0


def preopen_stt(call_uuid: str, options: STTOptions) -> None:
    """Open the call's STT connection now, from any thread, so audio flows from the first frame."""
    if not _serving():
        return

    async def run() -> None:
        try:
            session = await registry.provider("stt").open(options)
        except Exception as exc:
            log.warning("STT pre-open for %s failed: %s", call_uuid, exc)
            return
        _stt_sessions[call_uuid] = (session, _loop.time() + PREOPEN_TTL_S)
        await asyncio.sleep(PREOPEN_TTL_S)
        if (held := _stt_sessions.pop(call_uuid, None)) is not None:  # never answered
            await held[0].close()

    _tasks.add(task := asyncio.run_coroutine_threadsafe(run(), _loop))
    task.add_done_callback(_tasks.discard)


def take_stt(call_uuid: str) -> STTSession | None:
    """The STT session opened for this call while it rang, if any (each is taken once)."""
    held = _stt_sessions.pop(call_uuid, None)
    return held[0] if held else None
