"""`make bench`: voice-to-voice latency of the real server, measured at the caller's end of the wire.

    python -m bench.latency [--turns 30] [--turns-per-call 10] [--greetings 5] [--json PATH]

Starts the Deepgram, OpenAI and ElevenLabs emulators (fixed latencies: STT final 300 ms after the
end of speech, LLM first token 250 ms, TTS first byte 100 ms) and daphne serving the production
ASGI app, each in its own process, on a fresh SQLite database in a temporary directory. A
Twilio-like caller then places calls over a real WebSocket, speaks ~1 s of speech-like audio per
turn in real-time 20 ms frames, and times the first agent frame of each reply. Prints p50/p95 of
voice-to-voice and of our own overhead (voice-to-voice minus the injected 650 ms), the greeting's
first frame after `start` with a cold and a pre-synthesised cache, and a per-stage breakdown
joined from the latency figures the server stores on each agent turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import db, floor, report
from bench.caller import CallTiming, TwilioCaller
from bench.stack import KEYS, Injected, Script, Stack
from calls.sandbox.emulators.base import speech_like

GAP_S = 0.4  # the caller's pause after the agent finishes, before speaking again


@dataclass
class CallPlan:
    role: str  # "warmup" (not counted), "turns" or "greeting"
    turns: int
    warm_greeting: bool
    placed: db.PlacedCall | None = None
    timing: CallTiming | None = None


def plan_calls(turns: int, per_call: int, greetings: int) -> list[CallPlan]:
    plans = [CallPlan("warmup", 1, warm_greeting=False)]
    n_calls = math.ceil(turns / per_call) if turns else 0
    for i in range(n_calls):
        n = min(per_call, turns - i * per_call)
        plans.append(CallPlan("turns", n, warm_greeting=i % 2 == 1))
    for i in range(2 * greetings):
        plans.append(CallPlan("greeting", 0, warm_greeting=i % 2 == 1))
    return plans


def _warm(http_url: str, call_uuid: str) -> float:
    url = f"{http_url}/__bench__/warm-greeting?call={call_uuid}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as resp:
        return float(json.loads(resp.read())["ms"])


async def drive(stack: Stack, plans: list[CallPlan], speech_ms: int, log) -> None:
    for index, plan in enumerate(plans):
        timing = CallTiming()
        if plan.warm_greeting:
            timing.greeting_warm_ms = await asyncio.to_thread(
                _warm, stack.http_url, plan.placed.uuid
            )
        caller = TwilioCaller(
            stack.ws_url, plan.placed.params,
            stream_sid=f"MZ{secrets.token_hex(16)}", call_sid=f"CA{secrets.token_hex(16)}",
            account_sid=stack.env["TWILIO_ACCOUNT_SID"], auth_token=stack.env["TWILIO_AUTH_TOKEN"],
        )  # fmt: skip
        caller.timing = timing
        try:
            await caller.start()
            await caller.wait_agent_done()
            for k in range(plan.turns):
                await asyncio.sleep(GAP_S)
                turn = await caller.say(speech_like(speech_ms, seed=1000 * index + k))
                await caller.wait_agent_done()
                v2v = turn.voice_to_voice_ms
                log(f"  call {index} ({plan.role}) turn {k + 1}/{plan.turns}: "
                    + (f"{v2v:.1f} ms" if v2v is not None else "no reply"))  # fmt: skip
        finally:
            await caller.stop()
        plan.timing = timing
        log(f"call {index} ({plan.role}, {'pre-synthesised' if plan.warm_greeting else 'cold'} "
            f"greeting): first frame {timing.greeting_first_frame_ms:.1f} ms after start")  # fmt: skip


def collect(plans: list[CallPlan], injected: Injected, config: dict, floors: dict) -> dict:
    rows: list[dict] = []
    problems = {"turns_without_reply": 0, "clears": 0, "client_send_lag_max_ms": 0.0}
    for plan in plans:
        if plan.role != "turns":
            continue
        stored = db.stored_turns(plan.placed.uuid)
        callers = [t for t in stored if t.speaker == "caller"]
        replies = [t for t in stored if t.speaker == "agent" and "voice_to_voice_ms" in t.latency]
        problems["clears"] += plan.timing.clears
        for i, turn in enumerate(plan.timing.turns):
            caller = callers[i] if i < len(callers) else None
            reply = replies[i] if i < len(replies) else None
            row = report.turn_figures(turn, caller, reply, injected)
            rows.append(row)
            if row["voice_to_voice_ms"] is None:
                problems["turns_without_reply"] += 1
            problems["client_send_lag_max_ms"] = max(
                problems["client_send_lag_max_ms"], turn.send_lag_ms
            )
        if len(callers) != len(plan.timing.turns) or len(replies) != len(plan.timing.turns):
            problems.setdefault("mismatched_calls", []).append(
                {"call": plan.placed.uuid, "spoken": len(plan.timing.turns),
                 "caller_turns": len(callers), "replies": len(replies)}
            )  # fmt: skip
    greeting = {
        "cold": report.summary(p.timing.greeting_first_frame_ms for p in plans
                               if p.role != "warmup" and not p.warm_greeting),
        "warm": report.summary(p.timing.greeting_first_frame_ms for p in plans
                               if p.role != "warmup" and p.warm_greeting),
        "first_call": _r(plans[0].timing.greeting_first_frame_ms) if plans else None,
        "presynthesis_ms": report.summary(p.timing.greeting_warm_ms for p in plans
                                          if p.warm_greeting),
    }  # fmt: skip
    keys = list(report.STAGE_LABELS)
    figures = {
        "config": config,
        "voice_to_voice_ms": report.summary(r["voice_to_voice_ms"] for r in rows),
        "overhead_ms": report.summary(r["overhead_ms"] for r in rows),
        "server_voice_to_voice_ms": report.summary(
            r["server"].get("voice_to_voice_ms") for r in rows
        ),
        "greeting_first_frame_ms": greeting,
        "breakdown_ms": {
            k: report.summary(r["stages_ms"][k] for r in rows if "stages_ms" in r) for k in keys
        },
        "emulator_floor_ms": {k: report.summary(v) for k, v in floors.items()},
        "emulator_floor_samples": {k: [round(x, 1) for x in v] for k, v in floors.items()},
        "problems": problems,
        "turns": rows,
    }
    if floors:
        figures["emulator_floor_ms"]["stt_base"] = report.summary(
            v for v in floors["stt"] if v < report.LATE_ENDPOINT_MS
        )
        figures["overhead_ours_estimate_ms"] = report.summary(
            report.ours_estimate(r, figures["emulator_floor_ms"]) for r in rows
        )
    over, t = figures["overhead_ms"], report.TARGETS
    figures["targets_met"] = {
        "overhead_p50": bool(over.get("n")) and over["p50"] <= t["overhead_p50_ms"],
        "overhead_p95": bool(over.get("n")) and over["p95"] <= t["overhead_p95_ms"],
        "greeting_warm": bool(greeting["warm"].get("n"))
        and greeting["warm"]["p95"] <= t["greeting_ms"],
        "greeting_cold": bool(greeting["cold"].get("n"))
        and greeting["cold"]["p95"] <= t["greeting_ms"],
    }
    return figures


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=30, help="caller turns measured (default 30)")
    p.add_argument("--turns-per-call", type=int, default=10)
    p.add_argument("--greetings", type=int, default=5,
                   help="extra greeting-only call pairs (one cold, one pre-synthesised)")  # fmt: skip
    p.add_argument("--floor-samples", type=int, default=10,
                   help="requests per emulator timed with a plain client (0 = skip)")  # fmt: skip
    p.add_argument("--speech-ms", type=int, default=1000, help="length of each caller turn")
    p.add_argument("--token-delay-ms", type=float, default=0.0, help="LLM gap between tokens")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to its own CPU")
    p.add_argument("--json", type=Path, help="also save the figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    p.add_argument("--py-spy", type=Path, metavar="PATH",
                   help="sample the server with py-spy while calls run (collapsed stacks)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    a = p.parse_args(argv)
    if a.turns < 0 or a.turns_per_call < 1:
        p.error("--turns must be >= 0 and --turns-per-call >= 1")

    def log(message: str) -> None:
        if not a.quiet:
            print(message, file=sys.stderr, flush=True)

    injected, script = Injected(), Script(token_delay_ms=a.token_delay_ms)
    workdir = Path(tempfile.mkdtemp(prefix="callcenter-bench-"))
    plans = plan_calls(a.turns, a.turns_per_call, a.greetings)
    started = time.monotonic()
    try:
        stack = Stack(workdir, injected, script, pin=not a.no_pin)
        with stack:
            log(f"server pid {stack.server_pid} on {stack.http_url}, work dir {workdir}")
            db.setup(stack.env)
            logging.getLogger("httpx").setLevel(logging.WARNING)
            run_id = secrets.token_hex(3)
            for i, plan in enumerate(plans):
                plan.placed = db.place_call(i, run_id)
            if stack.pin:
                os.sched_setaffinity(0, {1})  # the caller shares the emulators' core
            floors = {}
            if a.floor_samples > 0:
                log("timing the emulators alone (their floor) ...")
                floors = asyncio.run(floor.measure(stack.urls, KEYS, injected, a.floor_samples))
            cpu0, wall0 = _cpu_seconds(stack.server_pid), time.monotonic()
            with _profiler(a.py_spy, stack.server_pid, log):
                asyncio.run(drive(stack, plans, a.speech_ms, log))
            server_cpu = (_cpu_seconds(stack.server_pid) - cpu0) / (time.monotonic() - wall0)
            config = {
                "turns": a.turns, "turns_per_call": a.turns_per_call, "greeting_pairs": a.greetings,
                "speech_ms": a.speech_ms, "gap_s": GAP_S, "pinned": stack.pin,
                "injected_ms": {**asdict(injected), "total": injected.total},
                "script": asdict(script), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                "seconds": round(time.monotonic() - started, 1),
                "server_cpu_percent_one_call": round(100 * server_cpu, 1),
            }  # fmt: skip
            figures = collect(plans, injected, config, floors)
    finally:
        if not a.keep:
            _remove(workdir)
    print(report.table(figures))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(figures, indent=2, default=str))
        log(f"figures saved to {a.json}")
    return 1 if figures["problems"]["turns_without_reply"] else 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _profiler(output: Path | None, pid: int, log):
    """py-spy (pip install py-spy) on the server: non-blocking sampling, only while calls run."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--pid", str(pid), "--rate", "1000", "--nonblocking",
            "--format", "raw", "--output", str(output)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log(f"py-spy samples saved to {output}")


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
