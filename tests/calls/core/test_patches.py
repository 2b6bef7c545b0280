"""The library patches: applied on the versions they name, refused loudly on any other."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from autobahn import util
from autobahn.twisted import websocket

from calls.core import patches
from calls.core.patches import Patch, PatchVersionError

REQUIREMENTS = Path(__file__).resolve().parents[3] / "requirements.txt"


def test_every_patch_is_written_for_the_pinned_and_installed_versions():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", REQUIREMENTS.read_text(), re.M))
    for patch in patches.PATCHES:
        for dist, version in patch.versions.items():
            assert pins.get(dist) == version, f"{patch.name}: requirements.txt pins {dist}"
            assert metadata.version(dist) == version
    patches.check_all()


def test_another_version_is_refused_with_what_to_recheck():
    patch = Patch(
        name="a patch for an older websockets",
        versions={"websockets": "14.0", "no-such-distribution-here": "1.0"},
        recheck="websockets' connect still takes `compression`.",
    )
    with pytest.raises(PatchVersionError) as refused:
        patch.require()
    message = str(refused.value)
    assert f"websockets is {metadata.version('websockets')}, the patch was written for 14.0" in (
        message
    )
    assert "no-such-distribution-here is not installed" in message
    assert "Re-check: websockets' connect still takes `compression`." in message
    assert "requirements.txt" in message


def test_check_all_names_every_patch_that_no_longer_fits(monkeypatch):
    old = Patch(name="old", versions={"websockets": "1.0"}, recheck="x.")
    older = Patch(name="older", versions={"channels": "1.0"}, recheck="y.")
    monkeypatch.setattr(patches, "PATCHES", (*patches.PATCHES, old, older))
    with pytest.raises(PatchVersionError) as refused:
        patches.check_all()
    assert [line.split(":")[0] for line in str(refused.value).splitlines()] == ["old", "older"]


def test_deepgram_listen_socket_is_opened_without_compression():
    from deepgram.listen.v1 import client

    patches.deepgram_listen_uncompressed()
    patches.deepgram_listen_uncompressed()  # idempotent
    connect = client.websockets_client_connect
    assert connect.keywords == {"compression": None}
    assert not hasattr(connect.func, "keywords")  # wrapped once


def test_autobahn_debug_arguments_become_plain_and_stay_so(monkeypatch):
    monkeypatch.setattr(websocket, "hltype", util.hltype)
    monkeypatch.setattr(websocket, "hlval", util.hlval)
    assert "\x1b[" in websocket.hltype(websocket.WebSocketAdapterProtocol.dataReceived)

    assert patches.autobahn_plain_debug_arguments() is True
    assert patches.autobahn_plain_debug_arguments() is True  # idempotent
    name = websocket.hltype(websocket.WebSocketAdapterProtocol.dataReceived)
    assert name == "<WebSocketAdapterProtocol.dataReceived>"
    assert websocket.hlval(42) == 42 and websocket.hlval("tcp4:127.0.0.1:1", bold=False)
    assert util.hltype is not websocket.hltype  # autobahn's own helpers are untouched


def test_helpers_someone_else_replaced_are_left_alone(monkeypatch):
    def theirs(obj):
        return "theirs"

    monkeypatch.setattr(websocket, "hltype", theirs)
    assert patches.autobahn_plain_debug_arguments() is False
    assert websocket.hltype is theirs
