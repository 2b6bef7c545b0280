"""Durations and latencies from API data, tolerant of missing latency."""

from __future__ import annotations

from ui import metrics


def test_fmt_seconds_and_call_seconds():
    assert metrics.fmt_seconds(None) == "—"
    assert metrics.fmt_seconds(75) == "1:15" and metrics.fmt_seconds(3725) == "1:02:05"
    call = {"duration": None, "answered_at": "2025-01-01T10:00:00Z", "ended_at": None}
    now = metrics.parse_ts("2025-01-01T10:01:30+00:00")
    assert metrics.call_seconds(call, now) == 90
    assert metrics.call_seconds({**call, "duration": 12}, now) == 12


def test_latency_rows_keep_numeric_figures_only():
    turns = [
        {"seq": 1, "latency": {"voice_to_voice_ms": 500, "llm_ms": "n/a"}},
        {"seq": 2, "latency": {}},
        {"seq": 3, "latency": None},
        {"seq": 4, "latency": {"voice_to_voice_ms": True}},
    ]
    assert metrics.latency_rows(turns) == [{"turn": 1.0, "voice_to_voice_ms": 500.0}]
    assert [metrics.voice_to_voice_ms(t) for t in turns] == [500.0, None, None, None]
