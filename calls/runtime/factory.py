"""Builds a call's session from the database: persona snapshot, prompt renderer, providers, carrier."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from agents import context as persona_context
from agents.models import Engine, Persona
from calls.live import providers as registry
from calls.live import warmup
from calls.live.session import CallSession, LiveCall
from calls.models import Call
from calls.pipeline.build import Providers, build_realtime_pipeline
from calls.pipeline.context import CallContext, Conversation, PipelineOptions
from calls.pipeline.tools import tool_schemas
from calls.providers.realtime.openai import RealtimeOptions, websocket_url
from calls.providers.stt.base import STTOptions
from calls.providers.tts.base import TTSOptions
from calls.providers.vad.base import SpeechDetector
from calls.telephony.actions import TwilioCallActions


def tts_options(persona: Persona) -> TTSOptions:
    """The persona's voice and model for the configured TTS."""
    path = settings.PROVIDERS["tts"]["BACKEND"]
    opts = persona.provider_options or {}
    return TTSOptions(
        voice=_voice(persona, path), model=opts.get("tts_model", ""), language=persona.language
    )


def stt_options(persona: Persona) -> STTOptions:
    return STTOptions(
        language=persona.language, model=(persona.provider_options or {}).get("stt_model", "")
    )


def _voice(persona: Persona, backend_path: str) -> str:
    """The persona's voice for a TTS backend: keyed by a short name such as 'elevenlabs' or 'local'."""
    voices = persona.voices or {}
    for key, voice in voices.items():
        if key in backend_path.lower():
            return str(voice)
    return ""


def _realtime(persona: Persona):
    """The speech-to-speech pipeline builder for `engine=realtime` personas."""
    opts = persona.provider_options or {}
    base_url = settings.OPENAI_BASE_URL
    options = RealtimeOptions(
        api_key=settings.OPENAI_API_KEY, base_url=base_url,
        websocket_base_url=websocket_url(base_url) if base_url else "",
        model=opts.get("realtime_model", "gpt-realtime"),
        voice=str((persona.voices or {}).get("openai", "alloy")),
        silence_duration_ms=int(opts.get("vad_silence_ms", 500)),
    )  # fmt: skip

    def build(ctx, transport, sink, *, on_audio_out=None):
        return build_realtime_pipeline(ctx, options, transport, sink, on_audio_out=on_audio_out)

    return build


def _history(call: Call) -> Conversation:
    conversation = Conversation(stage=call.current_stage)
    for turn in call.turns.order_by("seq"):
        if turn.speaker == "caller":
            conversation.add_caller(turn.text)
        elif turn.speaker in ("agent", "supervisor"):
            conversation.add_agent(turn.heard_text if turn.interrupted else turn.text)
    return conversation


def build_session(call: Call) -> CallSession:
    """Everything read from the ORM happens here, once, before any audio is processed."""
    persona = call.persona
    spec = persona_context.persona_spec(persona, call.variables)
    variables = dict(call.variables)
    caller = str(call.from_number if call.direction == "inbound" else call.to_number)

    def system_prompt(conversation: Conversation) -> str:
        return persona_context.render_prompt(
            persona, variables, history=conversation.transcript(), current_stage=conversation.stage,
            caller_number=caller, call_id=str(call.uuid),
        )  # fmt: skip

    system_prompt(Conversation())  # a template that cannot render fails here, not mid-call
    conversation = _history(call)
    options = PipelineOptions(
        silence_timeout_s=float(persona.silence_timeout_seconds),
        max_duration_s=float(persona.max_duration_seconds),
    )
    ctx = CallContext(
        persona=spec, system_prompt=system_prompt, tools=tool_schemas(spec), options=options,
        conversation=conversation,
    )  # fmt: skip
    greeting = call.welcome_message or spec.greeting
    live = LiveCall(
        id=call.pk, uuid=str(call.uuid), twilio_sid=call.twilio_sid, greeting=greeting,
        resumed=bool(conversation.messages),
    )  # fmt: skip
    actions = TwilioCallActions(call.pk, call.twilio_sid)
    if persona.engine == Engine.REALTIME:
        return CallSession(live, ctx, None, build=_realtime(persona), actions=actions)
    provider_opts = persona.provider_options or {}
    tts_path = settings.PROVIDERS["tts"]["BACKEND"]
    fallback_path = settings.PROVIDERS["tts_fallback"]["BACKEND"]
    vad_conf = settings.PROVIDERS["vad"]
    vad = import_string(vad_conf["BACKEND"])(
        **vad_conf.get("OPTIONS", {})
    )  # stateful: one per call
    providers = Providers(
        stt=registry.provider("stt"),
        llm=registry.provider("llm"),
        tts=registry.provider("tts"),
        tts_fallback=registry.provider("tts_fallback") if fallback_path != tts_path else None,
        detector=SpeechDetector(vad, start_ms=100, stop_ms=300),
        stt_options=stt_options(persona),
        stt_session=warmup.take_stt(str(call.uuid)),
        tts_options=tts_options(persona),
        tts_fallback_options=TTSOptions(voice=_voice(persona, fallback_path), language=persona.language),
        llm_model=provider_opts.get("llm_model", ""),
    )  # fmt: skip
    return CallSession(live, ctx, providers, actions=actions)
