"""Processors under test: the harness (a chain ending in a list), the call context it runs on, the
fake phone as a pipeline's transport, and small provider doubles for the STT side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from calls.core.persona import PersonaSpec
from calls.pipeline.context import CallContext, PipelineOptions
from calls.pipeline.frames import Frame, MarkPlayed
from calls.pipeline.processor import Pipeline, Processor, Sink
from calls.providers.stt.base import STTEvent, STTOptions, STTProvider, STTSession
from calls.providers.vad.base import VAD
from calls.sandbox.phone import FRAME_BYTES, Phone
from tests.support.wait import wait_until

PERSONA = PersonaSpec(name="p", agent_name="Ann")


def call_context(
    persona: PersonaSpec = PERSONA,
    *,
    system_prompt: Callable = lambda conversation: "",
    tools: list[dict] | None = None,
    clock: Callable[[], float] | None = None,
    **options,
) -> CallContext:
    """A call's context for processors under test; `options` are `PipelineOptions`, `clock`
    (e.g. `tests.support.clock.Clock`) replaces the real monotonic clock."""
    kw = {"clock": clock} if clock is not None else {}
    return CallContext(
        persona=persona, system_prompt=system_prompt, tools=tools or [],
        options=PipelineOptions(**options), **kw,
    )  # fmt: skip


class Harness:
    """A chain of processors ending in `out` (or a sink of the test's own): send frames in, wait
    for and look at what came out. `async with` starts and stops the chain."""

    def __init__(self, ctx: CallContext | None = None, **context) -> None:
        self.ctx = ctx if ctx is not None else call_context(**context)
        self.clock = self.ctx.clock
        self.out: list[Frame] = []
        self.pipeline: Pipeline | None = None

    def chain(self, *processors: Processor, sink: Callable | None = None) -> Pipeline:
        self.pipeline = Pipeline([*processors, Sink(sink or self.out.append)])
        return self.pipeline

    async def __aenter__(self):
        await self.pipeline.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pipeline.stop()

    async def send(self, *frames: Frame) -> None:
        for frame in frames:
            await self.pipeline.send(frame)

    async def until(self, predicate: Callable[[], object], limit: float = 3.0):
        return await wait_until(predicate, limit, state=lambda: f"out={self.out}")

    def of(self, kind: type) -> list:
        return [f for f in self.out if isinstance(f, kind)]


class PipelinePhone(Phone):
    """The fake phone as the transport a pipeline plays into (`send_media`, `send_mark`,
    `send_clear`): it plays at real time from the first audio, and each mark it echoes goes back
    into `pipeline` as `MarkPlayed`. Keeps what the pipeline sent, in order, in `sent`."""

    def __init__(self, pipeline: Pipeline | None = None, **kw) -> None:
        super().__init__(inbound=False, **kw)
        self.pipeline = pipeline
        self.sent: list[tuple] = []  # ("media", bytes) / ("mark", name) / ("clear",)
        self.media: list[bytes] = []  # what the pipeline sent, as 20 ms frames
        self.marks: list[str] = []
        self.played_at_clear_ms: list[int] = []  # how much had played when each clear came
        self._pacer: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- the pipeline's transport --------------------------------------------------------------
    async def send_media(self, mulaw: bytes) -> None:
        self.sent.append(("media", mulaw))
        self.media.extend(mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES))
        if self._pacer is None:
            self._pacer = asyncio.get_running_loop().create_task(self.pace())
        await self.app_media(mulaw)

    async def send_mark(self, name: str) -> None:
        self.sent.append(("mark", name))
        self.marks.append(name)
        await self.app_mark(name)

    async def send_clear(self) -> None:
        self.sent.append(("clear",))
        self.played_at_clear_ms.append(self.stats.frames_played * 20)
        await self.app_clear()

    # --- the phone -----------------------------------------------------------------------------
    async def _send(self, text: str) -> bool:
        return True  # nothing goes out as text: marks go back as frames

    async def echo_mark(self, name: str) -> None:
        self.stats.marks_echoed += 1
        self.stats.marks.append(name)
        if self.pipeline is not None:
            task = asyncio.get_running_loop().create_task(self.pipeline.send(MarkPlayed(name)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def clears(self) -> int:
        return self.stats.clears

    def count(self, kind: str) -> int:
        return sum(1 for entry in self.sent if entry[0] == kind)

    async def close(self) -> None:
        """Stop playing (idempotent): what a test does once its pipeline has stopped."""
        tasks = [t for t in (self._pacer, *self._tasks) if t is not None]
        self._pacer = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- provider doubles ----------------------------------------------------------------------------
class EnergyVAD(VAD):
    def is_speech(self, mulaw_frame: bytes) -> bool:
        return mulaw_frame[0] != 0xFF


class FakeSTTSession(STTSession):
    """Collects the audio; the test plays the recogniser by emitting events."""

    def __init__(self) -> None:
        self.audio = bytearray()
        self.urgent: list[bool] = []
        self._events: asyncio.Queue[STTEvent | None] = asyncio.Queue()

    async def send(self, mulaw: bytes, *, urgent: bool = True) -> None:
        self.audio += mulaw
        self.urgent.append(urgent)

    async def events(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        self._events.put_nowait(None)

    async def emit(self, *events: STTEvent) -> None:
        for event in events:
            self._events.put_nowait(event)
        await asyncio.sleep(0.01)  # let the STT processor pass them on


class FakeSTT(STTProvider):
    def __init__(self) -> None:
        self.sessions: list[FakeSTTSession] = []

    async def open(self, options: STTOptions) -> FakeSTTSession:
        self.sessions.append(FakeSTTSession())
        return self.sessions[-1]
