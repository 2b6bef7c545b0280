"""Live control across processes: the API in this process, the call held by another daphne
process, the request carried by the Redis channel layer."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async
from django.db import connection
from twilio.request_validator import RequestValidator

from calls import services
from calls.models import Turn
from calls.telephony import control, twiml
from calls.telephony.tokens import stream_params
from tests.support.liveserver import free_port
from tests.support.stream import start_msg
from tests.support.wait import wait_until_db

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


def database_url() -> str:
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or "postgres"
    return f"postgres://{user}@{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/{conf['NAME']}"


@pytest.fixture
def redis_layer(settings, redis_url):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [redis_url], "prefix": f"test{os.getpid()}"}},
    }  # fmt: skip
    channel_layers.backends.clear()
    yield redis_url
    channel_layers.backends.clear()


@pytest.fixture
def other_server(redis_layer, hosted_fakes, settings):
    """A second server process (daphne), on the same database and Redis, with the fakes."""
    port = free_port()
    conf = settings.PROVIDERS
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_layer,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEEPGRAM_API_KEY": "dg-key",
        "DEEPGRAM_BASE_URL": conf["stt"]["OPTIONS"]["base_url"],
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": conf["llm"]["OPTIONS"]["base_url"],
        "ELEVENLABS_API_KEY": "el-key",
        "ELEVENLABS_BASE_URL": conf["tts"]["OPTIONS"]["base_url"],
        "CHANNEL_PREFIX": f"test{os.getpid()}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "callcenter.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield f"ws://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


async def test_say_reaches_a_call_held_by_another_process(myra, other_server, settings):
    call = await db(services.call_create)(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"},
        welcome_message="Hi Ann.",
    )  # fmt: skip
    params = await db(stream_params)(call)
    sid = "MZ" + "f" * 32
    # Signed and started as Twilio would (the other process has this one's settings).
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
        twiml.media_stream_url(), {}
    )
    async with websockets.connect(
        f"{other_server}/ws/twilio/media/", additional_headers={"X-Twilio-Signature": signature}
    ) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
        await ws.send(json.dumps(start_msg(params, sid, call_sid="CA9")))

        async def play_until_mark() -> bytes:
            audio = b""
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["event"] == "media":
                    audio += base64.b64decode(msg["media"]["payload"])
                elif msg["event"] == "mark":
                    await ws.send(
                        json.dumps({"event": "mark", "streamSid": sid, "mark": msg["mark"]})
                    )
                    return audio

        assert await play_until_mark()  # the greeting
        live = await db(type(call).objects.get)(pk=call.pk)
        assert live.status == "in-progress"
        await db(control.say)(live, text="A word from your supervisor.")
        assert await play_until_mark()
        await wait_until_db(
            lambda: Turn.objects.filter(call=call, text="A word from your supervisor.").exists(),
            what="the supervisor's line spoken by the other process",
        )
