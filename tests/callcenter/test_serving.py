"""The server-start speedups in callcenter/serving.py."""

from __future__ import annotations

from autobahn import util
from autobahn.twisted import websocket

from callcenter import serving


def test_autobahn_debug_arguments_become_plain_and_stay_so(monkeypatch):
    monkeypatch.setattr(websocket, "hltype", util.hltype)
    monkeypatch.setattr(websocket, "hlval", util.hlval)
    assert "\x1b[" in websocket.hltype(websocket.WebSocketAdapterProtocol.dataReceived)

    assert serving.quiet_autobahn_debug_arguments() is True
    assert serving.quiet_autobahn_debug_arguments() is True  # idempotent
    name = websocket.hltype(websocket.WebSocketAdapterProtocol.dataReceived)
    assert name == "<WebSocketAdapterProtocol.dataReceived>"
    assert websocket.hlval(42) == 42 and websocket.hlval("tcp4:127.0.0.1:1", bold=False)
    assert util.hltype is not websocket.hltype  # autobahn's own helpers are untouched


def test_an_autobahn_that_changed_is_left_alone(monkeypatch):
    def theirs(obj):
        return "theirs"

    monkeypatch.setattr(websocket, "hltype", theirs)
    assert serving.quiet_autobahn_debug_arguments() is False
    assert websocket.hltype is theirs


def test_the_startup_heap_is_hidden_from_full_collections():
    import gc

    import callcenter.asgi  # noqa: F401  (the server's entry point freezes once it is built)

    assert gc.get_freeze_count() > 10_000
    assert serving.freeze_startup_heap() > 10_000  # again: what is alive now joins them
    import weakref

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle made after the freeze is still collected
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None
