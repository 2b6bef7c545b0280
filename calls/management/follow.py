"""What `manage.py call --follow` prints: turns with their latency, and what the call did besides
talking (tools, keys pressed, transfers, hang-ups, errors), one line each, in the order they
happened."""

from __future__ import annotations

import json
from datetime import datetime

from calls.models import CallEvent, Turn

LABEL = 10  # the width of the first column ("     agent  Hello")
# Events with a line of their own; the rest (status, stream, latency, provider) are shown
# otherwise (status) or are bookkeeping. `set_stage` shows as its `stage` event.
SHOWN = frozenset({"tool_call", "dtmf", "control", "stage", "error", "override"})


def _latency(figures: dict) -> str:
    """`[820 ms: stt 310, llm 4, tts 95]` from a turn's latency figures."""
    if not figures or "voice_to_voice_ms" not in figures:
        return ""
    parts = []
    if "stt_final_ms" in figures:
        parts.append(f"stt {figures['stt_final_ms']:.0f}")
    for name, start, end in (
        ("llm", "llm_request_ms", "llm_first_token_ms"),
        ("tts", "tts_request_ms", "tts_first_byte_ms"),
    ):
        if start in figures and end in figures:
            parts.append(f"{name} {figures[end] - figures[start]:.0f}")
    detail = f": {', '.join(parts)}" if parts else ""
    return f"  [{figures['voice_to_voice_ms']:.0f} ms{detail}]"


def line(label: str, text: str) -> str:
    return f"{label:>{LABEL}}  {text}"


def format_turn(turn: Turn) -> str:
    text = turn.text
    if turn.interrupted:
        text = f"{turn.heard_text or '...'} [interrupted; meant: {turn.text}]"
    return line(turn.speaker, f"{text}{_latency(turn.latency or {})}")


def _arguments(arguments: object) -> str:
    if not arguments:
        return ""
    return " " + json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "))


def format_event(event: CallEvent) -> str | None:
    """One line for an event worth showing, None for the others."""
    p = event.payload if isinstance(event.payload, dict) else {}
    kind = event.type
    if kind == "tool_call":
        name = str(p.get("name", "?"))
        return None if name == "set_stage" else line("tool", name + _arguments(p.get("arguments")))
    if kind == "dtmf":
        if p.get("direction") == "sent":
            return line("keys", f"{p.get('digits', '?')} pressed by the agent")
        return line("keys", f"{p.get('digit') or p.get('digits') or '?'} pressed by the caller")
    if kind == "control" and p.get("action") == "transferred":
        return line("transfer", f"transferred to {p.get('to', '?')}")
    if kind == "control":
        action = str(p.get("action", "?"))
        if action == "hangup":
            return line("hangup", str(p.get("reason") or "by the operator"))
        detail = p.get("to") or p.get("digits") or ""
        return line("operator", f"{action.replace('_', ' ')} {detail}".rstrip())
    if kind == "stage":
        return line("stage", str(p.get("stage", "?")))
    if kind == "override":
        return line("operator", f"says: {p.get('text', '')}")
    if kind == "error":
        detail = p.get("reason") or p.get("message") or p.get("detail") or ""
        return line("error", f"{p.get('provider', '')} {detail}".strip() or json.dumps(p))
    return None


def _when(item: Turn | CallEvent) -> datetime | None:
    if isinstance(item, Turn):
        return item.ended_at or item.started_at
    return item.created_at


def timeline(turns: list[Turn], events: list[CallEvent]) -> list[str]:
    """The lines for newly stored turns and events, in time order (a turn at its end: the tool it
    announced comes before it, what the tool did after)."""
    items: list[Turn | CallEvent] = [*turns, *(e for e in events if e.type in SHOWN)]

    def key(pair: tuple[int, Turn | CallEvent]) -> tuple[float, int]:
        when = _when(pair[1])
        return (when.timestamp() if when else float("-inf"), pair[0])

    ordered = sorted(enumerate(items), key=key)
    lines = []
    for _, item in ordered:
        text = format_turn(item) if isinstance(item, Turn) else format_event(item)
        if text:
            lines.append(text)
    return lines
