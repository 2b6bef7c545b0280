"""Assembles the processor chain for one call from its context, providers and transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from calls.pipeline.context import CallContext
from calls.pipeline.frames import Frame
from calls.pipeline.idle import IdleMonitor
from calls.pipeline.llm import LLMProcessor
from calls.pipeline.playout import PlayoutProcessor, Transport
from calls.pipeline.processor import Pipeline, Sink
from calls.pipeline.realtime import RealtimeClientFactory, RealtimeProcessor
from calls.pipeline.stt import STTProcessor
from calls.pipeline.tts import TTSProcessor
from calls.pipeline.turns import TurnTaker
from calls.pipeline.vad import VADProcessor
from calls.providers.llm.base import LLMProvider
from calls.providers.stt.base import STTOptions, STTProvider, STTSession
from calls.providers.tts.base import TTSOptions, TTSProvider
from calls.providers.vad.base import SpeechDetector


@dataclass
class Providers:
    stt: STTProvider
    llm: LLMProvider
    tts: TTSProvider
    detector: SpeechDetector
    stt_options: STTOptions
    tts_options: TTSOptions
    tts_fallback: TTSProvider | None = None
    tts_fallback_options: TTSOptions | None = None
    llm_model: str = ""
    stt_session: STTSession | None = None  # opened while the phone rang


def build_pipeline(
    ctx: CallContext,
    providers: Providers,
    transport: Transport,
    sink: Callable[[Frame], Awaitable[None] | None],
    *,
    on_audio_out: Callable[[bytes, float], None] | None = None,
) -> Pipeline:
    """VAD -> STT -> turn-taking -> LLM -> TTS -> playout -> idle -> sink."""
    pipeline: Pipeline

    async def inject(frame: Frame) -> None:
        await pipeline.send(frame)

    pipeline = Pipeline(
        [
            VADProcessor(providers.detector),
            STTProcessor(providers.stt, providers.stt_options, session=providers.stt_session),
            TurnTaker(ctx),
            LLMProcessor(ctx, providers.llm, model=providers.llm_model),
            TTSProcessor(
                ctx,
                providers.tts,
                providers.tts_options,
                fallback=providers.tts_fallback,
                fallback_options=providers.tts_fallback_options,
            ),
            PlayoutProcessor(ctx, transport, on_audio_out=on_audio_out),
            IdleMonitor(ctx, inject),
            Sink(sink),
        ]
    )
    return pipeline


def build_realtime_pipeline(
    ctx: CallContext,
    realtime: RealtimeClientFactory,
    transport: Transport,
    sink: Callable[[Frame], Awaitable[None] | None],
    *,
    on_audio_out: Callable[[bytes, float], None] | None = None,
) -> Pipeline:
    """Speech-to-speech (`engine=realtime`): Realtime -> playout -> idle -> sink.

    `realtime` makes a session from (instructions, tools): a RealtimeOptions, or any factory.
    """
    pipeline: Pipeline

    async def inject(frame: Frame) -> None:
        await pipeline.send(frame)

    playout = PlayoutProcessor(ctx, transport, on_audio_out=on_audio_out)
    pipeline = Pipeline(
        [
            RealtimeProcessor(ctx, realtime, playout=playout),
            playout,
            IdleMonitor(ctx, inject),
            Sink(sink),
        ]
    )
    return pipeline
