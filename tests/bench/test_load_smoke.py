"""`make load` still runs end to end: two sandbox calls through the API, carrier and server, for a
few seconds. No timing is asserted (the figures belong to bench/README.md), only that the whole
path ran and the counting found what the callees said."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import LINES, scenario_yaml
from callcenter.serve import SERVERS
from calls.sandbox.scenario import SCENARIO_DIR, Hangup, Say, WaitAgent, load, parse

ROOT = Path(__file__).resolve().parents[2]


def test_the_load_scenario_talks_waits_and_hangs_up():
    import yaml

    generated = parse(yaml.safe_load(scenario_yaml(3)), "load")
    steps = generated.steps
    assert isinstance(steps[0], WaitAgent) and isinstance(steps[-1], Hangup)
    assert [s.text for s in steps if isinstance(s, Say)] == list(LINES[:3])
    assert generated.voice == "synthetic" and generated.linger == 0
    fixture = load(SCENARIO_DIR / "load.yaml")  # the same callee, for `manage.py call`
    assert fixture.number == "" and fixture.voice == "synthetic"
    assert {s.text for s in fixture.steps if isinstance(s, Say)} <= set(LINES)


@pytest.mark.bench
@pytest.mark.timeout(90)
@pytest.mark.parametrize("server", SERVERS)
def test_two_calls_run_through_the_whole_path(tmp_path, server):
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.load", "--server", server, "--calls", "2", "--seconds", "2",
         "--exchanges", "1",
         "--min-ramp", "0.5", "--settle", "0.5", "--no-warmup", "--json", str(out), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "inbound lag p50 / p99" in run.stdout
    [level] = json.loads(out.read_text())["levels"]
    assert level["server"] == server and level["calls"] == 2 and level["failed_calls"] == 0
    assert level["turns"] == {**level["turns"], "caller_lines_spoken": 2, "lost": 0}
    frames = level["frames"]
    assert frames["inbound_sent"] > 0 and frames["inbound_dropped"] == 0
    assert frames["inbound_processed"] == frames["inbound_sent"]
    assert frames["outbound_total"] > 0
    assert level["inbound_lag_ms"]["n"] > 0 and level["loop_lag_ms"]["n"] > 0
    # the carrier's lists of late sends reached the probe, matched to its streams by sid
    assert frames["carrier_streams_matched"] == 2 and frames["carrier_late_sends_unlisted"] == 0
    assert level["inbound_lag_from_schedule_ms"]["n"] == level["inbound_lag_ms"]["n"]
    assert set(level["gc_pause_ms"]) == {"gen0", "gen1", "gen2"}  # each may not have run
    assert "GC pauses" in run.stdout
    res = level["resources"]
    assert 0 <= res["server_loop_thread_cpu_percent"] <= res["server_cpu_percent"] + 1  # ticks
    for call in level["per_call"]:
        assert call["status"] == "completed"
        assert call["caller_turns"] == 1 and call["agent_turns"] == 2  # greeting + one reply
