"""Pure helpers over API data: timestamps, durations and latencies (the KPIs come from the API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from ui.api_client import Call, Turn

V2V_KEY = "voice_to_voice_ms"


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def fmt_ts(value: str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    ts = parse_ts(value)
    return ts.astimezone().strftime(fmt) if ts else ""


def call_seconds(call: Call, now: datetime | None = None) -> int | None:
    """Talk time: the carrier's duration once known, else time since answer (or since start)."""
    if call.get("duration") is not None:
        return int(call["duration"])  # type: ignore[arg-type]
    start = parse_ts(call.get("answered_at")) or parse_ts(call.get("created_at"))
    if start is None:
        return None
    end = parse_ts(call.get("ended_at")) or now or datetime.now(UTC)
    return max(0, int((end - start).total_seconds()))


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def voice_to_voice_ms(turn: Turn) -> float | None:
    latency = turn.get("latency") or {}
    return _number(latency.get(V2V_KEY)) if isinstance(latency, Mapping) else None


def latency_rows(turns: Iterable[Turn]) -> list[dict[str, float]]:
    """One row per turn with numeric latency values: {"turn": seq, <key>: ms, ...}."""
    rows = []
    for turn in turns:
        latency = turn.get("latency") or {}
        if not isinstance(latency, Mapping):
            continue
        values = {str(k): n for k, v in latency.items() if (n := _number(v)) is not None}
        if values:
            rows.append({"turn": float(turn["seq"]), **values})
    return rows
