"""Agent-to-agent: the callee is another persona, run by a second pipeline on the carrier's side.

The app's agent audio, as it plays on the line, is this pipeline's inbound audio (VAD, local STT,
the scripted dialogue, local TTS); this pipeline's output is what the callee says into the stream.
Its own playout is paced by the same line: its marks are echoed once their audio has gone out on
the stream, and its `clear` (barge-in by the app's agent) drops what it had not said yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from calls.core.persona import QA, PersonaSpec, Stage
from calls.pipeline.build import Providers, build_pipeline
from calls.pipeline.context import CallContext, Conversation, PipelineOptions
from calls.pipeline.frames import (
    AudioIn,
    Frame,
    Hangup,
    MarkPlayed,
    Say,
    ToolRequest,
    ToolResult,
    TurnRecord,
)
from calls.pipeline.tools import tool_schemas
from calls.sandbox.media import SILENCE_FRAME, MediaStream, Playback
from calls.sandbox.scenario import Scenario

log = logging.getLogger(__name__)


def persona_spec(data: dict) -> PersonaSpec:
    """A PersonaSpec from a scenario's `persona` mapping."""
    return PersonaSpec(
        name=str(data.get("name", data["agent_name"])),
        agent_name=str(data["agent_name"]),
        greeting=str(data.get("greeting", "")),
        goodbye=str(data.get("goodbye", "")),
        language=str(data.get("language", "en-US")),
        stages=tuple(
            Stage(str(s["name"]), str(s.get("description", ""))) for s in data.get("stages", ())
        ),
        qa=tuple(QA(str(q["question"]), str(q["answer"])) for q in data.get("qa", ())),
        tools=tuple(data.get("tools", ("end_call",))),
        variables={str(k): str(v) for k, v in (data.get("variables") or {}).items()},
    )


def _providers(voice: str) -> Providers:
    from calls.providers.llm.scripted import ScriptedLLM
    from calls.providers.stt.base import STTOptions
    from calls.providers.stt.local import LocalSTT
    from calls.providers.tts.base import TTSOptions
    from calls.providers.tts.local import LocalTTS
    from calls.providers.vad.base import SpeechDetector
    from calls.providers.vad.webrtc import WebRTCVAD

    return Providers(
        stt=LocalSTT(),
        llm=ScriptedLLM(),
        tts=LocalTTS(voice=voice),
        detector=SpeechDetector(WebRTCVAD(), start_ms=100, stop_ms=300),
        stt_options=STTOptions(),
        tts_options=TTSOptions(voice=voice),
    )


class PersonaCallee:
    """A `media.Party` whose words come from a pipeline playing `scenario.persona`."""

    def __init__(self, scenario: Scenario, *, hang_up: Callable[[], None]) -> None:
        assert scenario.persona is not None
        self.scenario = scenario
        self._hang_up = hang_up
        self.spec = persona_spec(scenario.persona)
        self.ctx = CallContext(
            persona=self.spec,
            system_prompt=lambda _conversation: "",
            tools=tool_schemas(self.spec),
            options=PipelineOptions(silence_timeout_s=30.0, max_duration_s=600.0),
            conversation=Conversation(),
        )
        self._voice = scenario.voice
        self._out = Playback()  # what this persona is saying, played onto the line at real time
        self._inbox: asyncio.Queue[Frame | None] = asyncio.Queue()
        self.turns: list[TurnRecord] = []
        self.stream: MediaStream | None = None
        self.hung_up = False
        self._pump: asyncio.Task | None = None
        self._closed = False

    # --- media.Party ----------------------------------------------------------------------------
    def stream_started(self, stream: MediaStream) -> None:
        self.stream = stream
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run())

    def stream_ended(self, stream: MediaStream) -> None:
        if self.stream is stream:
            self.stream = None

    def next_frame(self) -> bytes | None:
        frame, marks = self._out.play()
        for name in marks:
            self._inbox.put_nowait(MarkPlayed(name))
        return frame

    def hear(self, frame: bytes | None) -> None:
        self._inbox.put_nowait(AudioIn(frame or SILENCE_FRAME, time.monotonic()))

    def on_clear(self) -> None:
        pass

    def on_digits(self, digits: str) -> None:
        log.info("persona callee %s heard digits %s", self.spec.agent_name, digits)

    def close(self) -> None:
        self._closed = True
        self._inbox.put_nowait(None)

    def report(self) -> dict:
        return {
            "scenario": self.scenario.name,
            "persona": self.spec.agent_name,
            "turns": [
                {"speaker": "callee" if t.speaker == "agent" else "app-agent", "text": t.text}
                for t in self.turns
            ],
            "hung_up": self.hung_up,
        }

    # --- the pipeline's transport ---------------------------------------------------------------
    async def send_media(self, mulaw: bytes) -> None:
        self._out.push(mulaw)

    async def send_mark(self, name: str) -> None:
        if self._out.mark(name):
            self._inbox.put_nowait(MarkPlayed(name))

    async def send_clear(self) -> None:
        for name in self._out.clear():
            self._inbox.put_nowait(MarkPlayed(name))

    # --- internals ------------------------------------------------------------------------------
    async def _run(self) -> None:
        pipeline = build_pipeline(self.ctx, _providers(self._voice), self, self._sink)
        await pipeline.start()
        try:
            if self.spec.greeting:
                await pipeline.send(Say(self.spec.greeting, kind="greeting"))
            while (frame := await self._inbox.get()) is not None:
                await pipeline.send(frame)
        finally:
            await pipeline.stop()

    async def _sink(self, frame: Frame) -> None:
        if isinstance(frame, TurnRecord):
            self.turns.append(frame)
        elif isinstance(frame, Hangup) and not self.hung_up and not self._closed:
            self.hung_up = True
            self._hang_up()
        elif isinstance(frame, ToolRequest):
            # The callee persona cannot transfer or press keys; tell its dialogue so.
            self._inbox.put_nowait(
                ToolResult(frame.call_id, frame.name, {"ok": False, "error": "unavailable"})
            )
