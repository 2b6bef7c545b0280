"""What the load bench reads besides the calls: inbound lag, GC pauses (bench/probe.py), per-thread CPU."""

from __future__ import annotations

import gc
import os
import threading
import time

from bench.load import cpu_seconds
from bench.probe import Probe


def test_each_collection_is_timed_and_counted_in_its_window():
    probe = Probe()
    gc.callbacks.append(probe.on_gc)
    try:
        since = time.monotonic()
        gc.collect(0)
        gc.collect(2)
        until = time.monotonic()
        gc.collect(2)  # after the window: not counted in it
    finally:
        gc.callbacks.remove(probe.on_gc)
    pauses = probe.figures(since, until)["gc_pause_ms"]
    assert pauses["gen0"]["n"] >= 1 and pauses["gen2"]["n"] == 1
    assert 0 < pauses["gen2"]["max"] < (until - since) * 1000


def test_the_carriers_own_lateness_is_not_counted_as_the_servers():
    probe = Probe()
    rec = probe.record("MZ1")
    t0 = 1000.0
    # frame 3 was handed over 50 ms late by the carrier and processed at once; frame 4 was sent
    # on time and waited 30 ms in the server
    done = {0: 0.0, 20: 0.0, 40: 0.0, 60: 0.050, 80: 0.030}
    for ts, late in done.items():
        rec.media_in(ts, t0 + ts / 1000 + 0.0002 + late)
    figures = probe.figures(t0, t0 + 1, {"MZ1": {60: 50.0}})
    assert figures["inbound_lag_from_schedule_ms"]["max"] == 50.0
    assert figures["inbound_lag_ms"]["max"] == 30.0
    assert figures["inbound_lag_ms"]["n"] == 5 and figures["inbound_frames_sent_late"] == 1
    unknown = probe.figures(t0, t0 + 1)  # without the carrier's word, all of it counts
    assert unknown["inbound_lag_ms"]["max"] == 50.0


def test_a_stream_the_carrier_sent_late_throughout_keeps_its_server_lag():
    probe = Probe()
    rec = probe.record("MZ2")
    t0 = 1000.0
    # every frame went out 5 ms late; frame 2 then waited 30 ms in the server
    for ts, waited in {0: 0.0, 20: 0.0, 40: 0.030, 60: 0.0}.items():
        rec.media_in(ts, t0 + ts / 1000 + 0.0002 + 0.005 + waited)
    figures = probe.figures(t0, t0 + 1, {"MZ2": dict.fromkeys((0, 20, 40, 60), 5.0)})
    lags = figures["inbound_lag_ms"]
    assert abs(lags["max"] - 30.0) < 0.01 and lags["p50"] < 0.01
    assert figures["sent_late_streams_known"] == 1


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_cpu_of_one_thread_is_told_apart_from_the_process():
    pid, main = os.getpid(), threading.get_native_id()
    main0, all0 = cpu_seconds(pid, task=main), cpu_seconds(pid)
    worker = threading.Thread(target=_spin, args=(0.3,))
    worker.start()
    worker.join()  # the main thread waits: its CPU barely moves
    main1, all1 = cpu_seconds(pid, task=main), cpu_seconds(pid)
    _spin(0.3)
    main2 = cpu_seconds(pid, task=main)
    assert all1 - all0 >= 0.25 and main1 - main0 < 0.1
    assert main2 - main1 >= 0.25
