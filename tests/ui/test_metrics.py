"""KPIs and durations from API data, tolerant of missing latency."""

from __future__ import annotations

from ui import metrics


def test_fmt_seconds_and_call_seconds():
    assert metrics.fmt_seconds(None) == "—"
    assert metrics.fmt_seconds(75) == "1:15" and metrics.fmt_seconds(3725) == "1:02:05"
    call = {"duration": None, "answered_at": "2025-01-01T10:00:00Z", "ended_at": None}
    now = metrics.parse_ts("2025-01-01T10:01:30+00:00")
    assert metrics.call_seconds(call, now) == 90
    assert metrics.call_seconds({**call, "duration": 12}, now) == 12


def test_kpis_tolerate_missing_latency():
    calls = [
        {"id": "a", "status": "completed", "answered_at": "x", "duration": 60},
        {"id": "b", "status": "busy", "answered_at": None, "duration": None},
        {"id": "c", "status": "ringing", "answered_at": None, "duration": None},
    ]
    turns = {
        "a": [
            {"seq": 1, "latency": {"voice_to_voice_ms": 500}},
            {"seq": 2, "latency": {}},
            {"seq": 3, "latency": None},
            {"seq": 4, "latency": {"voice_to_voice_ms": True}},
        ],
        "b": [{"seq": 1}],
    }
    k = metrics.kpis(calls, turns)
    assert k == metrics.Kpis(calls=3, answered_rate=0.5, average_seconds=60, median_v2v_ms=500)
    assert metrics.kpis([], {}) == metrics.Kpis(0, None, None, None)
    assert metrics.latency_rows(turns["a"]) == [{"turn": 1.0, "voice_to_voice_ms": 500.0}]
