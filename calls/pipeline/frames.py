"""Typed frames passed between pipeline processors (downstream unless noted)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Frame:
    pass


# --- from the caller's side ---------------------------------------------------------------
@dataclass(slots=True)
class AudioIn(Frame):
    """One inbound 20 ms mu-law frame; `t` is the monotonic arrival time; `speech` is the local
    VAD's decision for this frame (None until a VAD has looked at it)."""

    mulaw: bytes
    t: float
    speech: bool | None = None


@dataclass(slots=True)
class MarkPlayed(Frame):
    """The carrier echoed our mark: everything queued before it has been played (or cleared)."""

    name: str


# --- speech and turns ---------------------------------------------------------------------
@dataclass(slots=True)
class CallerSpeechStarted(Frame):
    t: float


@dataclass(slots=True)
class CallerSpeechStopped(Frame):
    t: float


@dataclass(slots=True)
class CallerTranscript(Frame):
    text: str
    final: bool
    speech_final: bool = False


@dataclass(slots=True)
class CallerTurn(Frame):
    """The caller finished a turn: what they said, and when their speech ended."""

    text: str
    speech_end: float
    stt_final: float


@dataclass(slots=True)
class Interrupt(Frame):
    """Barge-in or an override: stop speaking now, cancel what is in flight."""

    reason: str = "barge-in"


# --- the agent's reply --------------------------------------------------------------------
@dataclass(slots=True)
class ReplyStarted(Frame):
    reply_id: int


@dataclass(slots=True)
class TextChunk(Frame):
    """Reply text ready to speak (a clause or sentence)."""

    reply_id: int
    text: str


@dataclass(slots=True)
class ToolRequest(Frame):
    """A tool call to run outside the pipeline; the result comes back as ToolResult."""

    reply_id: int
    call_id: str
    name: str
    arguments: dict


@dataclass(slots=True)
class ToolResult(Frame):
    call_id: str
    name: str
    result: dict


@dataclass(slots=True)
class ReplyDone(Frame):
    """No more text for this reply (the LLM finished, failed or was cancelled)."""

    reply_id: int
    end_call: bool = False


@dataclass(slots=True)
class SpeechChunk(Frame):
    """A piece of synthesised audio of one segment (one TextChunk); `end` closes the segment."""

    reply_id: int
    segment: int
    text: str
    mulaw: bytes
    end: bool = False


@dataclass(slots=True)
class Say(Frame):
    """Speak this text verbatim (greeting, supervisor override, nudge), not through the LLM."""

    text: str
    kind: str = "say"
    end_call: bool = False


# --- outputs to the session (persist, publish, act) ---------------------------------------
@dataclass(slots=True)
class TurnRecord(Frame):
    speaker: str
    text: str
    heard_text: str = ""
    interrupted: bool = False
    started_at: float = 0.0
    ended_at: float = 0.0
    latency: dict = field(default_factory=dict)


@dataclass(slots=True)
class EventRecord(Frame):
    type: str
    payload: dict = field(default_factory=dict)


@dataclass(slots=True)
class Hangup(Frame):
    reason: str


@dataclass(slots=True)
class StageChanged(Frame):
    stage: str
