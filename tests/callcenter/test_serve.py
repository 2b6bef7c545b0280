"""Both servers `python -m callcenter.serve` starts serve the same product: the HTTP API with its
auth, and the media stream socket with its refusals and close codes, over real sockets."""

import asyncio
import base64
import json
import secrets
import urllib.error
import urllib.request

import pytest
import websockets

from callcenter import serve
from tests.support.liveserver import free_port, live_server, sandbox_env

SID = "MZ" + "b" * 32


def test_each_server_has_its_command():
    daphne = serve.command("daphne", "127.0.0.1", 8123)
    assert daphne[0].endswith("daphne") and daphne[1:] == [
        "-b", "127.0.0.1", "-p", "8123", "callcenter.asgi:application",
    ]  # fmt: skip
    uvicorn = serve.command("uvicorn", "0.0.0.0", 9000, "bench.asgi:application")
    assert uvicorn[0].endswith("uvicorn") and uvicorn[1] == "bench.asgi:application"
    pairs = dict(zip(uvicorn[2::2], uvicorn[3::2], strict=True))
    assert pairs == {
        "--host": "0.0.0.0", "--port": "9000", "--loop": "uvloop", "--http": "httptools",
        "--ws": "websockets-sansio", "--ws-per-message-deflate": "false",
        "--ws-max-size": str(serve.WS_MAX_BYTES), "--timeout-keep-alive": "75", "--lifespan": "off",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown server 'gunicorn'"):
        serve.command("gunicorn", "127.0.0.1", 1)


def test_an_unknown_server_is_refused_before_anything_starts(capsys):
    with pytest.raises(SystemExit) as exit_:
        serve.main(["--server", "gunicorn"])
    assert exit_.value.code == 2
    assert "invalid choice: 'gunicorn'" in capsys.readouterr().err


def _start(token: str) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": SID,
        "start": {"streamSid": SID, "accountSid": "AC1", "callSid": "CA1", "tracks": ["inbound"],
                  "customParameters": {"token": token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    })  # fmt: skip


def _media() -> str:
    payload = base64.b64encode(bytes([0xFF]) * 160).decode()
    return json.dumps({"event": "media", "streamSid": SID, "media": {"payload": payload}})


async def _closed_with(url: str, messages: list[str | bytes]) -> int | None:
    """Send `messages`, then read until the server closes; the close code it sent."""
    async with websockets.connect(url, compression=None, open_timeout=10) as ws:
        try:
            for message in messages:
                await ws.send(message)
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", serve.SERVERS)
def test_the_server_serves_the_api_and_guards_the_media_socket(server, tmp_path):
    port = free_port()
    env = sandbox_env(tmp_path, port, account_sid="AC" + secrets.token_hex(16),
                      auth_token=secrets.token_hex(16))  # fmt: skip
    with live_server(env, port, tmp_path / "server.log", server=server):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/calls/", timeout=10)
        assert refused.value.code in (401, 403)  # the API needs a token or a session

        media = f"ws://127.0.0.1:{port}/ws/twilio/media/"
        # A forged stream token: policy violation.
        assert asyncio.run(_closed_with(media, [_start("forged.token")])) == 4008
        # Audio without a start, past the tolerance: protocol error.
        assert asyncio.run(_closed_with(media, [_media()] * 60)) == 4002
        # A malformed frame before `start`: not Twilio, closed at once.
        junk: list[str | bytes] = ["{not json", b"\x00binary", "[]", "x" * 20_000] * 6
        assert asyncio.run(_closed_with(media, junk)) == 4002
        # Only `connected`, then nothing: closed once the start is overdue.
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        assert asyncio.run(_closed_with(media, [connected])) == 4008
        # The server survived all of it.
        assert asyncio.run(_closed_with(media, [_start("forged.again")])) == 4008
