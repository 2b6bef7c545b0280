"""`make bench` still runs end to end: two turns through the real server, no timing asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import percentile, summary

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_interpolate_like_numpy():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == pytest.approx(9.55)
    assert summary([None, 3.0, 1.0]) == {"n": 2, "p50": 2.0, "p95": 2.9, "min": 1.0, "max": 3.0}
    assert summary([]) == {"n": 0}


@pytest.mark.bench
@pytest.mark.timeout(240)
def test_bench_runs_two_turns_through_the_real_server(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.latency", "--turns", "2", "--turns-per-call", "2",
         "--greetings", "1", "--floor-samples", "2", "--json", str(out), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=220, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "voice-to-voice" in run.stdout and "our overhead" in run.stdout
    figures = json.loads(out.read_text())
    assert figures["voice_to_voice_ms"]["n"] == 2
    assert figures["overhead_ms"]["n"] == 2
    assert figures["problems"]["turns_without_reply"] == 0
    assert figures["greeting_first_frame_ms"]["cold"]["n"] >= 1
    assert figures["greeting_first_frame_ms"]["warm"]["n"] >= 1
    for turn in figures["turns"]:
        assert turn["server"]["voice_to_voice_ms"] > 0
        assert set(turn["stages_ms"]) >= {"stt_path", "llm_path", "tts_path"}
