"""Load-test probe inside the server under test (bench/asgi.py installs it when BENCH_PROBE=1).

What it records, per media stream, with `time.monotonic()` (CLOCK_MONOTONIC: the same clock in
every process of the machine, and the clock the carrier's pacer uses through `loop.time()`):

- inbound: for each `media` frame, its `timestamp` (the carrier sends frame n at its stream's
  t0 + n * 20 ms and stamps it n * 20) and the moment the consumer had handled it (the product's
  observer hooks, calls.live.observers, report both).
  offset = done - timestamp is constant when nothing queues. Net of how late the carrier handed
  the frame to its socket (the carrier lists those frames), the frame's lag is its net offset
  minus the stream's smallest net offset (its fastest frame: ~0.2 ms of loopback transit, not
  counted); `inbound_lag_from_schedule_ms` is the same without the carrier's lateness taken out.
- outbound: the carrier's playback buffer, modelled from the moment each agent frame is handed to
  the socket (each frame adds 20 ms; the buffer drains in real time). A frame handed over after
  the buffer ran dry, less than `REPLY_GAP_S` after the previous one, came late mid-reply: the
  callee heard a gap. (A longer silence is the pause between two replies.)
- the event loop: a task sleeps 10 ms in a loop and records how late it wakes.
- garbage collection: each collection's generation and pause (`gc.callbacks`); a full collection
  stops every call at once, so a few of them make a window's p99.

`GET /__bench__/probe` answers with stream counts (cheap: polled while calls ramp up);
`GET /__bench__/probe?since=T&until=T` with the figures of that window (monotonic seconds), plus
per-stream frame counts over the whole run (to join with the carrier's); POSTed with the carrier's
list of frames it sent late, the inbound lag leaves out what the carrier added (the lateness of a
load generator sharing a core with the emulators is not the server's). bench/load.py asks for
the figures once every call has ended, so computing them (~0.5 s at 200 calls) stalls no call.
The cost: ~1-2 us and 8 bytes per inbound frame (reported as `probe_bytes`, subtracted from the
memory figure by bench/load.py), 100 timer wake-ups a second.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from array import array
from urllib.parse import parse_qs

PROBE_PATH = "/__bench__/probe"
LOOP_TICK_S = 0.010
REPLY_GAP_S = 1.0
FRAME_S = 0.020
_TS_KEY = '"timestamp":"'
_MEDIA_PREFIX = '{"event":"media"'


class StreamRecord:
    __slots__ = ("ended", "late_frames", "late_ms", "off", "out_end", "out_frames", "out_times",
                 "sid", "started", "t0", "ts")  # fmt: skip

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.t0 = 0.0  # first frame's done - its timestamp (keeps the float32 offsets small)
        self.ts = array("I")  # frame timestamp, ms
        self.off = array("f")  # done - timestamp - t0, seconds
        self.started = time.monotonic()
        self.ended: float | None = None
        self.out_end = 0.0  # where the modelled carrier buffer runs dry
        self.out_frames = 0
        self.out_times = array("d")  # when each late outbound frame was handed over
        self.late_frames = 0
        self.late_ms = array("f")  # the gap each late frame caused

    def media_in(self, ts_ms: int, done: float) -> None:
        if not self.ts:
            self.t0 = done - ts_ms / 1000
        self.ts.append(ts_ms)
        self.off.append(done - ts_ms / 1000 - self.t0)

    def media_out(self, now: float, frames: int) -> None:
        """A media message of `frames` whole 20 ms frames handed to the socket at `now`."""
        self.out_frames += frames
        if self.out_end and self.out_end < now < self.out_end + REPLY_GAP_S:
            self.late_frames += 1
            self.out_times.append(now)
            self.late_ms.append((now - self.out_end) * 1000)
        self.out_end = max(self.out_end, now) + FRAME_S * frames

    @property
    def nbytes(self) -> int:
        arrays = (self.ts, self.off, self.out_times, self.late_ms)
        return sum(a.itemsize * len(a) for a in arrays)


class Probe:
    def __init__(self) -> None:
        self.streams: dict[str, StreamRecord] = {}
        self.finalised: set[str] = set()  # call UUIDs whose session finished finalising
        self.loop_t = array("d")
        self.loop_lag = array("f")
        self._loop_task: asyncio.Task | None = None
        self.gc_t = array("d")  # when each collection ended
        self.gc_gen = array("b")
        self.gc_ms = array("f")
        self.gc_collected = array("I")  # unreachable objects each collection freed
        self._gc_start = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
            return
        now = time.monotonic()
        self.gc_t.append(now)
        self.gc_gen.append(info["generation"])
        self.gc_ms.append((now - self._gc_start) * 1000)
        self.gc_collected.append(info["collected"])

    # --- recording ----------------------------------------------------------------------------
    def ensure_loop_probe(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop_probe())

    async def _loop_probe(self) -> None:
        clock = time.monotonic
        while True:
            t = clock()
            await asyncio.sleep(LOOP_TICK_S)
            self.loop_t.append(t)
            self.loop_lag.append(clock() - t - LOOP_TICK_S)

    # --- calls.live.observers.StreamObserver ----------------------------------------------------
    def message_in(self, stream_sid: str, text: str, done: float) -> None:
        if not text.startswith(_MEDIA_PREFIX):
            return
        i = text.find(_TS_KEY, 60)
        if i < 0:
            return
        i += len(_TS_KEY)
        try:
            ts = int(text[i : text.index('"', i)])
        except ValueError:
            return
        self.record(stream_sid).media_in(ts, done)

    def media_out(self, stream_sid: str, frames: int, at: float) -> None:
        self.record(stream_sid).media_out(at, frames)

    def stream_stopped(self, stream_sid: str, at: float) -> None:
        self.record(stream_sid).ended = at

    def call_finalised(self, call_uuid: str) -> None:
        self.finalised.add(str(call_uuid))  # turns, events, recording, end status written

    def record(self, sid: str) -> StreamRecord:
        rec = self.streams.get(sid)
        if rec is None:
            rec = self.streams[sid] = StreamRecord(sid)
        return rec

    # --- figures ------------------------------------------------------------------------------
    def counts(self) -> dict:
        try:
            from calls.live.session import live_sessions

            live = len(live_sessions)
        except ImportError:
            live = 0
        return {
            "now": time.monotonic(),
            "streams_started": len(self.streams),
            "streams_ended": sum(1 for r in self.streams.values() if r.ended is not None),
            "live_sessions": live,
            "finalised": sorted(self.finalised),
        }

    def figures(
        self, since: float, until: float, sent_late: dict[str, dict[int, float]] | None = None
    ) -> dict:
        """The window's figures. `sent_late` is the carrier's word, per stream, on the frames
        it handed to its socket late (timestamp -> ms after their deadline): that part of their
        lag is the carrier's, not the server's (`inbound_lag_ms` leaves it out;
        `inbound_lag_from_schedule_ms` keeps it)."""
        lags: list[float] = []
        scheduled: list[float] = []
        by_second: dict[int, list[float]] = {}
        per_stream: dict[str, dict] = {}
        late, late_ms, out_frames_total, sent_late_n = 0, [], 0, 0
        sent_late = sent_late or {}
        for rec in self.streams.values():
            t0 = rec.t0
            carrier_late = sent_late.get(rec.sid, {})
            # Offsets net of the carrier's lateness, each stream's zero its fastest frame by
            # either measure (a zero taken before subtracting could hold some lateness itself).
            net = [off - carrier_late.get(ts, 0.0) / 1000
                   for ts, off in zip(rec.ts, rec.off, strict=True)]  # fmt: skip
            base_scheduled = min(rec.off) if rec.ts else 0.0
            base = min(net) if net else 0.0
            for ts, off, net_off in zip(rec.ts, rec.off, net, strict=True):
                done = t0 + ts / 1000 + off
                if since <= done <= until:
                    scheduled.append((off - base_scheduled) * 1000)
                    sent_late_n += ts in carrier_late
                    lag = (net_off - base) * 1000
                    lags.append(lag)
                    by_second.setdefault(int(done - since), []).append(lag)
            for t, gap in zip(rec.out_times, rec.late_ms, strict=True):
                if since <= t <= until:
                    late += 1
                    late_ms.append(gap)
            out_frames_total += rec.out_frames
            per_stream[rec.sid] = {
                "frames_in": len(rec.ts), "frames_out": rec.out_frames,
                "late_out": rec.late_frames, "ended": rec.ended is not None,
            }  # fmt: skip
        loop = [lag * 1000 for t, lag in zip(self.loop_t, self.loop_lag, strict=True)
                if since <= t <= until]  # fmt: skip
        pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        freed = {0: 0, 1: 0, 2: 0}
        gcs = zip(self.gc_t, self.gc_gen, self.gc_ms, self.gc_collected, strict=True)
        for t, gen, ms, collected in gcs:
            if since <= t <= until:
                pauses[gen].append(ms)
                freed[gen] += collected
        return {
            **self.counts(),
            "since": since,
            "until": until,
            "inbound_lag_ms": _dist(lags),
            "inbound_lag_from_schedule_ms": _dist(scheduled),
            "inbound_frames_sent_late": sent_late_n,
            "sent_late_streams_known": sum(1 for sid in sent_late if sid in self.streams),
            "inbound_lag_by_second": [
                {
                    "s": sec,
                    **{k: v for k, v in _dist(vals).items() if k in ("n", "p50", "p99", "max")},
                }
                for sec, vals in sorted(by_second.items())
            ],
            "loop_lag_ms": _dist(loop),
            "gc_pause_ms": {f"gen{gen}": _dist(ms) for gen, ms in pauses.items()},
            "gc_freed_objects": {f"gen{gen}": n for gen, n in freed.items()},
            "outbound_late_frames": late,
            "outbound_late_gap_ms": _dist(late_ms),
            "outbound_frames_total": out_frames_total,
            "probe_bytes": sum(r.nbytes for r in self.streams.values())
            + 12 * len(self.loop_t)
            + 17 * len(self.gc_t),
            "streams": per_stream,
        }


def _dist(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    data = sorted(values)

    def q(p: float) -> float:
        pos = (len(data) - 1) * p / 100
        lo, hi = math.floor(pos), math.ceil(pos)
        return round(data[lo] + (data[hi] - data[lo]) * (pos - lo), 2)

    return {"n": len(data), "p50": q(50), "p90": q(90), "p99": q(99), "p999": q(99.9),
            "max": round(data[-1], 2), "mean": round(sum(data) / len(data), 2)}  # fmt: skip


PROBE = Probe()


def install() -> None:
    """Observe every media stream and call of this server from now on (the product's hooks,
    calls.live.observers) and every garbage collection; nothing else of the server changes."""
    from calls.live import observers

    gc.callbacks.append(PROBE.on_gc)
    observers.observe(PROBE)


async def serve(scope, receive, send) -> None:
    """GET /__bench__/probe[?since=&until=] -> counts, or the window's figures (JSON).
    POST with `?since=&until=` and a JSON body {stream sid: [[timestamp ms, ...], [ms late, ...]]}
    (the carrier's StreamStats lists): the figures, with the carrier's late sends taken out of the
    inbound lag."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    query = parse_qs(scope.get("query_string", b"").decode())
    if "since" in query:
        raw = json.loads(b"".join(chunks) or b"{}")
        sent_late = {sid: dict(zip(ts, ms, strict=True)) for sid, (ts, ms) in raw.items()}
        body = PROBE.figures(
            float(query["since"][0]), float(query.get("until", ["inf"])[0]), sent_late
        )
    else:
        body = PROBE.counts()
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
