"""DeepgramSTT through the real deepgram-sdk against the local Deepgram emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from calls.providers.stt.base import (
    SpeechStarted,
    STTError,
    STTEvent,
    STTOptions,
    Transcript,
    UtteranceEnd,
)
from calls.providers.stt.deepgram import DeepgramConnectError, DeepgramSTT
from calls.sandbox.emulators.base import Faults, silence, speech_like
from calls.sandbox.emulators.deepgram import DeepgramEmulator

OPTIONS = STTOptions(endpointing_ms=300, utterance_end_ms=1000)


@pytest.fixture
async def server() -> AsyncIterator[tuple[DeepgramEmulator, str]]:
    emulator = DeepgramEmulator(final_latency_ms=300)
    async with emulator.server() as srv:
        yield emulator, srv.base_url


def stt(url: str, **kw) -> DeepgramSTT:
    return DeepgramSTT(api_key="test-key", base_url=url, **kw)


async def feed(session, audio: bytes) -> None:
    """Frame by frame, with the send loop's turn between frames, as 20 ms apart they get it
    (audio queued without a turn goes out joined: see the test of that)."""
    for i in range(0, len(audio), 160):
        await session.send(audio[i : i + 160])
        await asyncio.sleep(0)


async def wait_for(
    events: AsyncIterator[STTEvent], pred: Callable[[STTEvent], bool], seen: list[STTEvent]
) -> STTEvent:
    async with asyncio.timeout(5):
        async for event in events:
            seen.append(event)
            if pred(event):
                return event
    raise AssertionError(f"events ended without a match; saw {seen}")


def is_final(event: STTEvent) -> bool:
    return isinstance(event, Transcript) and event.final


async def test_live_session_interims_final_vad_and_utterance_end(server):
    emu, url = server
    emu.script(["hello there", "I want a human"])
    session = await stt(url).open(OPTIONS)
    events, seen = session.events(), []

    await feed(session, silence(200) + speech_like(600, seed=1))
    speech_end = time.monotonic()
    await feed(session, silence(1200))
    final = await wait_for(events, is_final, seen)
    latency = time.monotonic() - speech_end

    assert final.text == "hello there" and final.speech_final
    assert final.start == pytest.approx(0.2, abs=0.03)
    assert final.end == pytest.approx(0.8, abs=0.03)
    assert 0.28 <= latency < 2.5  # the emulator holds the final 300 ms after speech end
    started = [e for e in seen if isinstance(e, SpeechStarted)]
    assert started and started[0].timestamp == pytest.approx(0.2, abs=0.03)
    interims = [e for e in seen if isinstance(e, Transcript) and not e.final]
    assert interims and all("hello there".startswith(e.text) for e in interims)
    ue = await wait_for(events, lambda e: isinstance(e, UtteranceEnd), seen)
    assert ue.last_word_end == pytest.approx(0.8, abs=0.03)

    await feed(session, speech_like(800, seed=2) + silence(1200))
    final2 = await wait_for(events, is_final, seen)
    assert final2.text == "I want a human" and final2.start == pytest.approx(2.0, abs=0.03)

    await session.close()
    async with asyncio.timeout(2):
        seen += [e async for e in events]  # the iterator ends after close
    assert not [e for e in seen if isinstance(e, STTError)]
    rec = emu.connections[0]
    assert rec.authorization == "Token test-key"
    assert rec.extensions == ""  # no permessage-deflate: mu-law frames are sent as they are
    assert {
        k: rec.query[k]
        for k in (
            "encoding",
            "sample_rate",
            "interim_results",
            "endpointing",
            "utterance_end_ms",
            "vad_events",
            "model",
        )
    } == {
        "encoding": "mulaw",
        "sample_rate": "8000",
        "interim_results": "true",
        "endpointing": "300",
        "utterance_end_ms": "1000",
        "vad_events": "true",
        "model": "nova-3",
    }
    assert rec.bytes_received == 8 * (200 + 600 + 1200 + 800 + 1200)
    assert rec.control[-1] == {"type": "CloseStream"}
    assert rec.sent_of("Metadata") and rec.close_reason == "CloseStream"


async def test_events_end_after_close(server):
    _, url = server
    session = await stt(url).open(OPTIONS)
    await session.close()
    async with asyncio.timeout(2):
        assert [e async for e in session.events()] == []


async def test_finalize_flushes_open_segment_without_waiting(server):
    emu, url = server
    emu.script(["transfer me please"])
    emu.final_latency_ms = 5000  # endpointed finals would be late; Finalize must not wait
    session = await stt(url).open(OPTIONS)
    events, seen = session.events(), []
    await feed(session, speech_like(700, seed=4))
    await wait_for(events, lambda e: isinstance(e, Transcript), seen)  # audio was processed
    started = time.monotonic()
    await session.finalize()
    final = await wait_for(events, is_final, seen)
    assert time.monotonic() - started < 2.0
    assert final.text == "transfer me please" and not final.speech_final
    assert {"type": "Finalize"} in emu.connections[0].control
    assert emu.connections[0].sent_of("Results")[-1]["from_finalize"] is True
    await session.close()


@pytest.mark.parametrize(
    ("key", "faults", "status"),
    [
        ("wrong-key", Faults(), 401),
        ("test-key", Faults(status=503), 503),
    ],
)
async def test_rejected_handshake_raises_connect_error(server, key, faults, status):
    emu, url = server
    emu.listen_faults = faults
    with pytest.raises(DeepgramConnectError) as err:
        await DeepgramSTT(api_key=key, base_url=url).open(OPTIONS)
    assert err.value.status == status and str(status) in str(err.value)
    assert emu.connections[0].status == status


async def test_dropped_socket_reconnects_and_replays_audio(server):
    emu, url = server
    emu.script(["I want a human"])
    emu.listen_faults = Faults(drop_after_messages=20, times=1)
    session = await stt(url, backoff_s=0.01).open(OPTIONS)
    events, seen = session.events(), []
    audio = silence(100) + speech_like(800, seed=3) + silence(1000)
    await feed(session, audio)

    final = await wait_for(events, is_final, seen)
    errors = [e for e in seen if isinstance(e, STTError)]
    assert errors and not any(e.fatal for e in errors)
    assert final.text == "I want a human" and final.speech_final
    assert final.start == pytest.approx(0.1, abs=0.03)  # session clock, not the new socket's
    first, second = emu.connections
    assert first.close_reason == "dropped (fault)" and first.frames_received == 20
    assert second.bytes_received == len(audio)  # all audio since the last final, once
    assert session.connections == 2
    await session.close()


async def test_replay_starts_after_the_last_final(server):
    emu, url = server
    emu.script(["first", "second"])
    session = await stt(url, backoff_s=0.01).open(OPTIONS)
    events, seen = session.events(), []
    first_turn = speech_like(400, seed=5) + silence(700)
    await feed(session, first_turn)
    await wait_for(events, is_final, seen)
    second_head = speech_like(300, seed=6)
    await feed(session, second_head)
    await wait_for(events, lambda e: isinstance(e, SpeechStarted) and e.timestamp > 1, seen)

    assert emu.drop_connections() == 1
    await feed(session, silence(700))
    final = await wait_for(events, is_final, seen)
    assert final.text == "second"
    assert final.start == pytest.approx(1.1, abs=0.03)
    # the replay begins where the first final ended (0.4 s), not at the start of the session
    replayed = emu.connections[1].bytes_received
    assert replayed == len(first_turn) + len(second_head) + len(silence(700)) - 8 * 400
    await session.close()


async def test_repeated_failures_end_with_fatal_error(server):
    emu, url = server
    emu.listen_faults = Faults(drop_after_messages=5, times=1)
    session = await stt(url, max_reconnects=2, backoff_s=0.01).open(OPTIONS)
    emu.listen_faults = Faults(status=503)
    await feed(session, speech_like(400))
    async with asyncio.timeout(5):
        seen = [e async for e in session.events()]
    errors = [e for e in seen if isinstance(e, STTError)]
    assert [e.fatal for e in errors] == [False, False, True]
    assert "503" in errors[-1].reason
    assert len(emu.connections) == 3
    await feed(session, speech_like(100))  # a dead session ignores audio
    await session.close()


async def test_keepalive_holds_an_idle_socket_open():
    emulator = DeepgramEmulator(idle_timeout_s=0.5)
    async with emulator.server() as srv:
        session = await DeepgramSTT(
            api_key="test-key", base_url=srv.base_url, keepalive_s=0.15
        ).open(OPTIONS)
        await asyncio.sleep(1.0)
        rec = emulator.connections[0]
        assert not rec.closed
        assert rec.control.count({"type": "KeepAlive"}) >= 3
        await session.close()
        assert session.connections == 1


async def test_send_never_blocks_and_bounds_its_buffer(server):
    emu, url = server
    emu.listen_faults = Faults(drop_after_messages=1, times=1)
    session = await stt(url, buffer_s=1.0, backoff_s=5.0).open(OPTIONS)
    await session.send(silence(20))
    await asyncio.sleep(0.1)  # the drop happened; the session now waits 5 s to reconnect
    started = time.monotonic()
    await feed(session, speech_like(3000))
    assert time.monotonic() - started < 0.5
    assert session.buffered_bytes <= 8000
    assert session.dropped_bytes >= 2 * 8000 - 160
    await session.close()


async def test_non_urgent_audio_goes_out_in_100_ms_messages(server):
    emu, url = server
    session = await stt(url).open(OPTIONS)
    frames = [bytes([0xFF]) * 160] * 14
    for frame in frames[:10]:  # speech or long silence: held and sent as 100 ms pieces
        await session.send(frame, urgent=False)
        await asyncio.sleep(0)  # the send loop's turn, as between frames
    await session.send(frames[10])  # near an endpoint: what is held goes out with it, at once
    await asyncio.sleep(0)  # the send loop's turn, as between frames
    for frame in frames[11:13]:
        await session.send(frame, urgent=False)
    await session.finalize()  # never held past a finalize
    await asyncio.sleep(0)  # the send loop's turn, as between frames
    await session.send(frames[13], urgent=False)
    await session.close()  # nor past the close
    rec = emu.connections[0]
    assert rec.bytes_received == 14 * 160
    assert rec.frames_received == 5  # 800 + 800 + 160 + 320 + 160 bytes
    assert [c["type"] for c in rec.control] == ["Finalize", "CloseStream"]


async def test_audio_queued_behind_a_busy_loop_goes_out_joined(server):
    emu, url = server
    session = await stt(url).open(OPTIONS)
    frame = bytes([0xFF]) * 160
    for _ in range(30):  # 600 ms queued before the send loop gets a turn (no await yields here)
        await session.send(frame)
    await session.finalize()  # a control message ends a run
    for _ in range(3):
        await session.send(frame)
    await session.close()
    rec = emu.connections[0]
    assert rec.bytes_received == 33 * 160
    # 250 ms a message at most: 13 + 13 + 4 frames, then the 3 after the Finalize.
    assert rec.frames_received == 4
    assert [c["type"] for c in rec.control] == ["Finalize", "CloseStream"]


def test_connect_kwargs_follow_options():
    provider = DeepgramSTT(api_key="k", model="nova-3", diarize=True)
    kw = provider.connect_kwargs(
        STTOptions(
            endpointing_ms=0, utterance_end_ms=1200, keywords=("refund",), extra={"tag": "call-1"}
        )
    )
    assert kw["endpointing"] == "false" and kw["utterance_end_ms"] == 1200
    assert kw["keyterm"] == ["refund"] and kw["encoding"] == "mulaw" and kw["sample_rate"] == 8000
    assert kw["request_options"] == {
        "additional_query_parameters": {"diarize": True, "tag": "call-1"}
    }
    assert "keywords" in DeepgramSTT(api_key="k", model="nova-2").connect_kwargs(
        STTOptions(keywords=("x",))
    )


async def test_hung_handshake_times_out(server):
    emu, url = server
    emu.listen_faults = Faults(hang=True)
    started = time.monotonic()
    with pytest.raises(DeepgramConnectError, match="Timeout"):
        await stt(url, connect_timeout_s=0.3).open(OPTIONS)
    assert time.monotonic() - started < 2.0
