"""Every change made to a library's behaviour, each tied to the versions it was written for.

A patch is applied only on the versions it names (requirements.txt pins them); on any other it
raises PatchVersionError saying what to re-check. The server checks every patch when it starts
(`check_all`, callcenter/asgi.py), so an upgrade fails there, not in a call.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)


class PatchVersionError(RuntimeError):
    """A patched library is not at the version its patch was written for."""


@dataclass(frozen=True)
class Patch:
    name: str
    versions: dict[str, str]  # distribution -> the version written and measured for (pinned)
    recheck: str  # what to read again in the library before moving the pins

    def require(self) -> None:
        """Raise PatchVersionError unless every distribution is installed at its version."""
        wrong = []
        for dist, wanted in self.versions.items():
            try:
                installed = metadata.version(dist)
            except metadata.PackageNotFoundError:
                installed = "not installed"
            if installed != wanted:
                wrong.append(f"{dist} is {installed}, the patch was written for {wanted}")
        if wrong:
            raise PatchVersionError(
                f"{self.name}: {'; '.join(wrong)}. Re-check: {self.recheck} Then set the versions "
                "in calls/core/patches.py to the ones pinned in requirements.txt."
            )


DEEPGRAM_LISTEN_UNCOMPRESSED = Patch(
    name="Deepgram's listen socket opened without permessage-deflate",
    versions={"deepgram-sdk": "7.16.0", "websockets": "15.0.1"},
    recheck=(
        "deepgram/listen/v1/client.py still opens the socket with its module-level "
        "`websockets_client_connect` (websockets' legacy `connect`, which takes `compression`) "
        "and still has no option of its own for compression. "
        "tests/calls/providers/test_deepgram_stt.py checks that no extension is offered."
    ),
)

AUTOBAHN_PLAIN_DEBUG_ARGUMENTS = Patch(
    name="autobahn's per-read debug arguments built without colours",
    versions={"autobahn": "26.11.1"},
    recheck=(
        "autobahn/twisted/websocket.py: `WebSocketAdapterProtocol.dataReceived` still builds its "
        "debug line's arguments with `hltype`/`hlval` (from autobahn.util) on every read, "
        "whether or not debug logging is on. If it no longer does, delete the patch."
    ),
)

CHANNELS_CONSUMER_LOOP = Patch(
    # Written in calls/runtime/consumer.py and calls/events.py (they subclass and read Channels;
    # nothing is assigned into it), guarded here with the others.
    name="MediaStreamConsumer's own message loop and the in-memory layer's group table",
    versions={"channels": "4.3.2"},
    recheck=(
        "channels/consumer.py `AsyncConsumer.__call__` and `dispatch`, which "
        "calls.runtime.consumer.MediaStreamConsumer replaces (it sets up scope, base_send, "
        "channel_layer and channel_name as they do, reads the socket in a plain loop, and does "
        "not close stale database connections per message); channels/layers.py "
        "`InMemoryChannelLayer.groups`, which calls.events.listened reads (a group is removed "
        "when its last member leaves)."
    ),
)

PATCHES = (DEEPGRAM_LISTEN_UNCOMPRESSED, AUTOBAHN_PLAIN_DEBUG_ARGUMENTS, CHANNELS_CONSUMER_LOOP)


def check_all() -> None:
    """Every patch's versions at once (at server start): one error naming all that differ."""
    errors = []
    for patch in PATCHES:
        try:
            patch.require()
        except PatchVersionError as exc:
            errors.append(str(exc))
    if errors:
        raise PatchVersionError("\n".join(errors))


def deepgram_listen_uncompressed() -> None:
    """deepgram-sdk opens the listen socket with websockets' default permessage-deflate and has
    no option for it: each 20 ms frame of mu-law, which barely compresses, would be deflated.
    Its module-level connect function is wrapped once, with `compression=None`."""
    DEEPGRAM_LISTEN_UNCOMPRESSED.require()
    from deepgram.listen.v1 import client

    connect = client.websockets_client_connect
    if not isinstance(connect, functools.partial):
        client.websockets_client_connect = functools.partial(connect, compression=None)


def _plain_type(obj: Any) -> str:
    return f"<{getattr(obj, '__qualname__', type(obj).__qualname__)}>"


def _plain_value(value: Any, color: str = "white", bold: bool = True) -> Any:
    return value


def autobahn_plain_debug_arguments() -> bool:
    """autobahn's `WebSocketAdapterProtocol.dataReceived` builds the arguments of a debug log line
    on every read, debug logging on or not: a qualified name via `inspect` and three
    ANSI-coloured strings via click, for each 20 ms media frame of every call on daphne. Its
    module's `hltype`/`hlval` are swapped for plain versions: the debug lines, when enabled, lose
    their colours and nothing else. False (nothing changed) when autobahn is not installed, or
    when something else already replaced them."""
    try:
        from autobahn import util
        from autobahn.twisted import websocket
    except ImportError:
        return False
    AUTOBAHN_PLAIN_DEBUG_ARGUMENTS.require()
    if websocket.hltype is _plain_type:
        return True
    if websocket.hltype is not util.hltype or websocket.hlval is not util.hlval:
        log.info("autobahn's hltype/hlval were replaced by someone else; left as they are")
        return False
    websocket.hltype = _plain_type
    websocket.hlval = _plain_value
    return True
