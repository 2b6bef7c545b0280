"""A Twilio-like caller on a real WebSocket: real-time 20 ms media, playback clock, mark echoes.

Media goes out every 20 ms on an absolute schedule, silence unless the caller is speaking. A frame
sent at time t carries the audio of [t - 20 ms, t], so the end of the caller's speech is the
scheduled send time of its last speech frame. Agent audio is "played" like Twilio plays it: each
frame extends a playback clock by 20 ms, and a mark is echoed when the clock reaches it (at once
on `clear`). All times are `time.monotonic()`, the clock the server's pipeline also uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

FRAME_S = 0.02
FRAME_BYTES = 160
SILENCE = b"\xff" * FRAME_BYTES
_MEDIA_PREFIX = '{"event":"media"'  # how calls.telephony.protocol.media_message starts
_PAYLOAD_KEY = '"payload":"'


@dataclass
class TurnTiming:
    speech_end: float  # monotonic: end of the caller's last speech frame
    speech_end_wall: float  # the same instant on the wall clock (time.time())
    send_lag_ms: float  # how late the last speech frame actually went out (client jitter)
    first_reply_frame: float | None = None  # monotonic arrival of the reply's first media frame

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.first_reply_frame is None:
            return None
        return (self.first_reply_frame - self.speech_end) * 1000


@dataclass
class CallTiming:
    greeting_first_frame_ms: float | None = None  # `start` sent -> first media frame arrived
    greeting_warm_ms: float | None = None  # the bench's pre-synthesis request, when made
    turns: list[TurnTiming] = field(default_factory=list)
    media_in: int = 0
    marks_echoed: int = 0
    clears: int = 0


def _start_message(stream_sid: str, call_sid: str, params: dict[str, str]) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"streamSid": stream_sid, "accountSid": "AC" + "0" * 32, "callSid": call_sid,
                  "tracks": ["inbound"], "customParameters": params,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    })  # fmt: skip


class TwilioCaller:
    """One call's media stream, seen from the carrier: connect, start, talk, listen, stop."""

    def __init__(self, url: str, params: dict[str, str], *, stream_sid: str, call_sid: str):
        self.url = url
        self.params = params
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.timing = CallTiming()
        self._ws: ClientConnection | None = None
        self._speech: deque[bytes] = deque()
        self._speech_done: asyncio.Future | None = None
        self._media_waiter: asyncio.Future | None = None
        self._marks: dict[str, asyncio.TimerHandle] = {}
        self._play_end = 0.0
        self._last_media = 0.0
        self._seq = 1
        self._tasks: list[asyncio.Task] = []
        self._t0 = 0.0  # when media started flowing (Twilio's media timestamps count from it)

    # --- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and send `connected` + `start`; media starts flowing at once, like Twilio's."""
        self._ws = await connect(self.url, max_size=2**20, compression=None, ping_interval=None)
        await self._ws.send(
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        )
        loop = asyncio.get_running_loop()
        self._media_waiter = loop.create_future()
        t_start = time.monotonic()
        await self._ws.send(_start_message(self.stream_sid, self.call_sid, self.params))
        self._tasks = [loop.create_task(self._receiver()), loop.create_task(self._sender())]
        first = await asyncio.wait_for(self._media_waiter, 10)
        self.timing.greeting_first_frame_ms = (first - t_start) * 1000

    async def stop(self) -> None:
        if self._ws is None:
            return
        sender = self._tasks[1] if len(self._tasks) > 1 else None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        try:
            await self._ws.send(json.dumps({"event": "stop", "sequenceNumber": str(self._seq),
                                            "streamSid": self.stream_sid,
                                            "stop": {"callSid": self.call_sid}}))  # fmt: skip
            await asyncio.wait_for(self._ws.wait_closed(), 10)
        except Exception:
            pass
        finally:
            for handle in self._marks.values():
                handle.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._ws.close()

    # --- conversation ---------------------------------------------------------------------------
    async def wait_agent_done(self, *, quiet_s: float = 0.3, limit_s: float = 20.0) -> None:
        """Until the agent's audio has all played, every mark is echoed, and quiet_s passed."""
        deadline = time.monotonic() + limit_s
        while True:
            now = time.monotonic()
            if not self._marks and now >= self._play_end and now - self._last_media >= quiet_s:
                return
            if now > deadline:
                raise TimeoutError("the agent never stopped speaking")
            await asyncio.sleep(0.02)

    async def say(self, audio: bytes, *, reply_timeout: float = 10.0) -> TurnTiming:
        """Speak `audio` then fall silent; returns when the reply's first frame has arrived."""
        loop = asyncio.get_running_loop()
        self._speech_done = loop.create_future()
        self._media_waiter = loop.create_future()
        for i in range(0, len(audio), FRAME_BYTES):
            self._speech.append(audio[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff"))
        turn: TurnTiming = await self._speech_done
        self.timing.turns.append(turn)
        deadline = loop.time() + reply_timeout
        while True:  # agent audio that began before the speech ended is not this turn's reply
            try:
                arrival = await asyncio.wait_for(self._media_waiter, deadline - loop.time())
            except TimeoutError:
                return turn
            if arrival >= turn.speech_end:
                turn.first_reply_frame = arrival
                return turn
            self._media_waiter = loop.create_future()

    # --- the wire -------------------------------------------------------------------------------
    async def _sender(self) -> None:
        loop = asyncio.get_running_loop()
        wall0 = time.time() - time.monotonic()
        due = self._t0 = loop.time()
        chunk = 0
        while True:
            frame = self._speech.popleft() if self._speech else SILENCE
            last = bool(frame is not SILENCE and not self._speech)
            self._seq += 1
            chunk += 1
            await self._ws.send(json.dumps({
                "event": "media", "sequenceNumber": str(self._seq), "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": str(chunk),
                          "timestamp": str(round((due - self._t0) * 1000)),
                          "payload": base64.b64encode(frame).decode("ascii")},
            }, separators=(",", ":")))  # fmt: skip
            if last and self._speech_done is not None and not self._speech_done.done():
                lag = (loop.time() - due) * 1000
                self._speech_done.set_result(TurnTiming(due, wall0 + due, lag))
            due += FRAME_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _receiver(self) -> None:
        loop = asyncio.get_running_loop()
        async for raw in self._ws:
            now = time.monotonic()
            if isinstance(raw, str) and raw.startswith(_MEDIA_PREFIX):
                self.timing.media_in += 1
                if self._media_waiter is not None and not self._media_waiter.done():
                    self._media_waiter.set_result(now)
                # A message holds whole frames: its base64 payload runs to the closing `"}}`.
                chars = len(raw) - raw.rindex(_PAYLOAD_KEY) - len(_PAYLOAD_KEY) - 3
                self._play_end = max(self._play_end, now) + FRAME_S * max(
                    1, round(chars * 0.75 / FRAME_BYTES)
                )
                self._last_media = now
                continue
            msg = json.loads(raw)
            event = msg.get("event")
            if event == "mark":
                name = msg["mark"]["name"]
                self._marks[name] = loop.call_at(self._play_end, self._echo, name)
            elif event == "clear":
                self.timing.clears += 1
                self._play_end = now
                for name, handle in list(self._marks.items()):
                    handle.cancel()
                    self._echo(name)

    def _echo(self, name: str) -> None:
        self._marks.pop(name, None)
        self.timing.marks_echoed += 1
        message = json.dumps({"event": "mark", "sequenceNumber": str(self._seq),
                              "streamSid": self.stream_sid, "mark": {"name": name}})  # fmt: skip
        self._tasks.append(asyncio.get_running_loop().create_task(self._ws.send(message)))
