"""The server's entry point: library patches checked and applied, the startup heap frozen."""

from __future__ import annotations

import gc


def test_the_entry_point_applies_the_patches_and_freezes_what_it_built():
    from autobahn.twisted import websocket

    import callcenter.asgi  # noqa: F401

    name = websocket.hltype(websocket.WebSocketAdapterProtocol.dataReceived)
    assert name == "<WebSocketAdapterProtocol.dataReceived>"  # no colours
    assert gc.get_freeze_count() > 10_000
