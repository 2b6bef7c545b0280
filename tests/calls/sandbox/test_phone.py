"""The fake phone on a clock that moves only when told: playback, mark echoes, `clear`, the caller's
frames and their lateness, and what it refuses from the app."""

from __future__ import annotations

import base64
import json

from calls.sandbox.phone import FRAME_BYTES, SILENCE_FRAME, Phone
from tests.support.clock import Clock

SID = "MZ" + "1" * 32


class Ear:
    """The person at the phone: says the queued frames, keeps what it heard."""

    def __init__(self, *said: bytes) -> None:
        self.said = list(said)
        self.heard: list[bytes | None] = []
        self.clears = 0

    def next_frame(self) -> bytes | None:
        return self.said.pop(0) if self.said else None

    def hear(self, frame: bytes | None) -> None:
        self.heard.append(frame)

    def on_clear(self) -> None:
        self.clears += 1


class Line(Phone):
    """The phone with its messages to the app kept, decoded."""

    def __init__(self, person: Ear, **kw) -> None:
        super().__init__(person, stream_sid=SID, clock=Clock(), **kw)
        self.sent: list[dict] = []

    async def _send(self, text: str) -> bool:
        self.sent.append(json.loads(text))
        return True

    def events(self, kind: str) -> list[dict]:
        return [m for m in self.sent if m["event"] == kind]

    async def app(self, event: str, **body) -> None:
        await self.receive(json.dumps({"event": event, "streamSid": SID, **body}))


def media(audio: bytes) -> dict:
    return {"media": {"payload": base64.b64encode(audio).decode()}}


async def test_a_mark_comes_back_once_the_audio_before_it_has_played():
    ear = Ear()
    line = Line(ear, inbound=False)
    await line.app("media", **media(b"\x11" * (3 * FRAME_BYTES + 80)))  # 3.5 frames
    await line.app("mark", mark={"name": "m1"})
    for _ in range(3):
        await line.tick()
    assert line.events("mark") == []  # half a frame still to play
    await line.tick()
    [echo] = line.events("mark")
    assert echo["mark"] == {"name": "m1"} and echo["streamSid"] == SID
    assert ear.heard == [b"\x11" * FRAME_BYTES] * 3 + [b"\x11" * 80 + SILENCE_FRAME[80:]]
    await line.tick()
    assert ear.heard[-1] is None  # nothing queued: nothing played
    assert (line.stats.frames_played, line.stats.marks) == (4, ["m1"])


async def test_a_mark_with_nothing_queued_comes_back_at_once():
    line = Line(Ear(), inbound=False)
    await line.app("mark", mark={"name": "now"})
    assert [m["mark"]["name"] for m in line.events("mark")] == ["now"]


async def test_clear_drops_the_unplayed_audio_and_echoes_every_pending_mark():
    ear = Ear()
    line = Line(ear, inbound=False)
    for name in ("a", "b"):
        await line.app("media", **media(b"\x22" * 5 * FRAME_BYTES))
        await line.app("mark", mark={"name": name})
    await line.tick()
    await line.app("clear")
    assert [m["mark"]["name"] for m in line.events("mark")] == ["a", "b"]
    assert ear.clears == 1 and line.playback.idle
    await line.tick()
    assert ear.heard == [b"\x22" * FRAME_BYTES, None]


async def test_each_tick_sends_the_callers_frame_or_silence_and_times_it():
    ear = Ear(b"\x33" * FRAME_BYTES)
    line = Line(ear)
    clock = line.clock
    await line.tick(deadline=clock())  # on time
    clock.advance(0.02 + 0.035)
    await line.tick(deadline=clock() - 0.035)  # 35 ms late
    first, second = line.events("media")
    assert base64.b64decode(first["media"]["payload"]) == b"\x33" * FRAME_BYTES
    assert base64.b64decode(second["media"]["payload"]) == SILENCE_FRAME
    assert [(m["media"]["chunk"], m["media"]["timestamp"]) for m in (first, second)] == [
        ("1", "0"),
        ("2", "20"),
    ]
    assert int(second["sequenceNumber"]) > int(first["sequenceNumber"])
    stats = line.stats
    assert (stats.frames_sent, stats.late_ticks) == (2, 1)
    assert stats.late_sent_ts == [20] and stats.late_sent_ms == [35.0]


async def test_the_opening_messages_carry_the_parameters():
    line = Line(Ear())
    connected, start = (json.loads(m) for m in line.opening({"token": "t"}, call_sid="CA1",
                                                             account_sid="AC1"))  # fmt: skip
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["start"]["customParameters"] == {"token": "t"}
    assert (start["streamSid"], start["start"]["callSid"]) == (SID, "CA1")


async def test_what_twilio_would_refuse_is_recorded_and_not_played():
    line = Line(Ear(), inbound=False)
    await line.receive("{not json")
    await line.receive(json.dumps({"event": "bogus", "streamSid": SID}))
    await line.receive(json.dumps({"event": "mark", "streamSid": "MZ" + "9" * 32}))
    await line.app("media", media={"payload": "!!"})
    await line.app("mark", mark={})
    assert [e.code for e in line.errors] == [31924] * 5
    assert line.playback.idle and line.sent == []
