"""Provider instances chosen by settings (dotted path + options), one per process, shared by calls."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


@cache
def _instance(path: str, options: tuple) -> Any:
    return import_string(path)(**dict(options))


def provider(kind: str) -> Any:
    """The configured provider of `kind` (stt, llm, tts, tts_fallback, vad)."""
    conf = settings.PROVIDERS[kind]
    return _instance(conf["BACKEND"], tuple(sorted(conf.get("OPTIONS", {}).items())))


def reset() -> None:
    _instance.cache_clear()
