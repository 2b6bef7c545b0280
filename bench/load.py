"""`make load`: N simultaneous sandbox calls against one server process, placed through the API.

    python -m bench.load --calls 10,50,100,200 --seconds 30 [--server uvicorn,daphne] [--json PATH]

For each server and N, a fresh stack (bench/stack.py): the Deepgram, OpenAI and ElevenLabs
emulators (STT final 300 ms after the end of speech, LLM first token 250 ms, TTS first byte
100 ms), the sandbox carrier (`manage.py sandbox_carrier --voice synthetic --no-record`) and the
server (daphne or uvicorn, started as `python -m callcenter.serve` starts it) serving the
production app with the bench probe (bench/probe.py), each its own process, on a fresh SQLite
database. One warm-up call, then N calls placed with `POST /api/calls/` over a ramp (40 a second),
so the whole product path runs: dial -> carrier -> signed status callbacks -> media stream ->
pipeline -> turns. Every callee plays the `load` scenario: a line every ~5 s, waits for the reply,
pauses, and hangs up after enough exchanges to outlast the measured window. The window opens when
all N streams are up and lasts --seconds; then the calls run out, everything is persisted, and
the bench counts. Prints a table, saves JSON; exits 1 if a turn was lost or a call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from bench.stack import Injected, Script, Stack
from callcenter.serve import SERVERS

PERSONA = "myra-recruiting"
FIRST_NUMBER = 14155552000  # +1 415 555 2000 and up: numbers with no scenario of their own
WARMUP_NUMBER = "+14155551999"
RAMP_RATE = 40.0  # calls placed per second
TARGET_P99_MS = 40.0
# The callee (same lines and timings as fixtures/scenarios/load.yaml).
LINES = (
    "Yes, this is Jordan speaking.",
    "I am still very interested.",
    "Thursday afternoon works for me.",
    "Is the job remote or hybrid?",
    "How big is the team?",
    "What does the interview look like?",
)
REPLY_GAP_S = 0.5  # wait_agent gap: the agent is done after this much silence
PAUSE_S = 1.0  # then the callee pauses before its next line, 1.0-2.0 s (1.5 on average)
PAUSE_JITTER_S = 1.0
# After the greeting, each callee starts at a random point of its ~5 s exchange: calls placed
# together would otherwise speak, and be answered, in lockstep (no real traffic does that).
START_JITTER_S = 5.0
REPLY_TIMEOUT_S = 20.0
# One exchange takes at least ~4.8 s unloaded (line 1.2-2 s, 650 ms injected, ~1 s of reply, the
# gap and the pause); load only makes it longer. Used to size the script so calls outlast the
# window.
EXCHANGE_MIN_S = 4.5


def scenario_yaml(exchanges: int, name: str = "load") -> str:
    wait = f"  - wait_agent: {{gap: {REPLY_GAP_S}, timeout: {REPLY_TIMEOUT_S}}}\n"
    out = [
        f"name: {name}\n",
        "description: Load test callee; talks every few seconds with pauses, then hangs up.\n",
        "voice: synthetic\nlinger: 0\nsteps:\n",
        wait,
        f"  - wait: {{seconds: 0, jitter: {START_JITTER_S}}}\n",
    ]
    for i in range(exchanges):
        if i:
            out.append(f"  - wait: {{seconds: {PAUSE_S}, jitter: {PAUSE_JITTER_S}}}\n")
        out.append(f"  - say: {LINES[i % len(LINES)]}\n")
        out.append(wait)
    out.append("  - hangup\n")
    return "".join(out)


# --- process figures from /proc --------------------------------------------------------------
def cpu_seconds(pid: int, task: int | None = None) -> float:
    """CPU seconds of a process, or of one of its threads (`task`: the thread's native id; the
    main thread's is the pid, and in the server that is the event loop's)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def cpu_times() -> dict[str, tuple[float, float]]:
    """Per CPU (busy, total) seconds since boot, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in vals]
            idle = v[3] + v[4]
            out[name] = ((sum(v[:8]) - idle) / tick, sum(v[:8]) / tick)
    return out


# --- one level ---------------------------------------------------------------------------------
@dataclass
class Placed:
    index: int
    to: str
    at: float = 0.0  # monotonic, when the POST went out
    api_ms: float | None = None
    status: int | None = None
    error: str = ""
    uuid: str = ""
    sid: str = ""
    call: dict = field(default_factory=dict)
    turns: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


class Level:
    def __init__(self, stack: Stack, token: str, n: int, args, log) -> None:
        self.stack, self.token, self.n, self.args, self.log = stack, token, n, args, log
        env = stack.env
        basic = base64.b64encode(f"{env['TWILIO_ACCOUNT_SID']}:{env['TWILIO_AUTH_TOKEN']}".encode())
        self.carrier_auth = {"Authorization": f"Basic {basic.decode()}"}
        self.api = stack.http_url
        self.headers = {"Authorization": f"Token {token}"}
        self.http: aiohttp.ClientSession | None = None

    # --- API and carrier requests -------------------------------------------------------------
    async def place(self, p: Placed) -> None:
        body = {"persona": PERSONA, "to": p.to,
                "variables": {"applicant_name": f"Caller {p.index}", "position": "SRE"}}  # fmt: skip
        p.at = time.monotonic()
        try:
            async with self.http.post(f"{self.api}/api/calls/", json=body, headers=self.headers,
                                      timeout=aiohttp.ClientTimeout(total=60)) as r:  # fmt: skip
                p.status = r.status
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            p.error = f"{type(exc).__name__}: {exc}"
            return
        finally:
            p.api_ms = (time.monotonic() - p.at) * 1000
        if p.status != 201:
            p.error = f"HTTP {p.status}: {json.dumps(data)[:200]}"
            return
        p.uuid, p.sid = data["id"], data.get("twilio_sid") or ""

    async def fetch_json(self, url: str, *, method: str = "GET", limit_s: float = 30, **kw):
        timeout = aiohttp.ClientTimeout(total=limit_s)
        async with self.http.request(method, url, timeout=timeout, **kw) as r:
            r.raise_for_status()
            return await r.json(content_type=None)

    async def probe(self, **params) -> dict:
        return await self.fetch_json(f"{self.api}/__bench__/probe", params=params)

    async def window_figures(self, since: float, until: float, sent_late: dict) -> dict:
        """The probe's figures for [since, until], the carrier's late sends taken out."""
        return await self.fetch_json(
            f"{self.api}/__bench__/probe", method="POST", json=sent_late,
            params={"since": since, "until": until}, limit_s=60,
        )  # fmt: skip

    async def plan(self, to: str, scenario: str) -> None:
        url = f"{self.stack.urls['carrier']}/sandbox/next"
        async with self.http.post(url, data={"To": to, "Scenario": scenario},
                                  headers=self.carrier_auth) as r:  # fmt: skip
            r.raise_for_status()

    async def wait_persisted(self, calls: list[Placed], limit: float) -> list[Placed]:
        """Until each call has ended and its session has finished finalising (its last turns,
        events, recording and end status written). Returns the calls that did not in time."""
        pending = [p for p in calls if p.uuid]
        deadline = time.monotonic() + limit
        while pending and time.monotonic() < deadline:
            done = set((await self.probe())["finalised"])
            pending = [p for p in pending if p.uuid not in done]
            if pending:
                await asyncio.sleep(0.5)
        sem = asyncio.Semaphore(8)

        async def fetch(p: Placed) -> None:
            if p.uuid:
                async with sem:
                    p.call = await self.fetch_json(f"{self.api}/api/calls/{p.uuid}/",
                                                   headers=self.headers)  # fmt: skip

        await asyncio.gather(*(fetch(p) for p in calls))
        return pending

    # --- the run --------------------------------------------------------------------------------
    async def run(self) -> dict:
        a, log, pid = self.args, self.log, self.stack.server_pid
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as self.http:
            await self.probe()  # the first request starts the server's warm-up and loop probe
            warm = None
            if not a.no_warmup:
                log("  warm-up call ...")
                await self.plan(WARMUP_NUMBER, "load-warmup")
                warm = Placed(-1, WARMUP_NUMBER)
                await self.place(warm)
                if warm.error:
                    raise RuntimeError(f"warm-up call failed: {warm.error}")
                await self.wait_persisted([warm], 60)
            await asyncio.sleep(1.0)
            base = await self.probe()
            rss0 = rss_mb(pid)
            calls = [Placed(i, f"+{FIRST_NUMBER + i}") for i in range(self.n)]
            ramp = max(a.min_ramp, self.n / RAMP_RATE)
            log(f"  placing {self.n} calls over {ramp:.1f} s ...")
            t_ramp = time.monotonic()

            async def place_at(p: Placed) -> None:
                await asyncio.sleep(max(0.0, t_ramp + ramp * p.index / self.n - time.monotonic()))
                await self.place(p)

            placing = asyncio.gather(*(place_at(p) for p in calls))
            target = base["streams_started"] + self.n
            deadline = t_ramp + ramp + 60
            counts = base
            while time.monotonic() < deadline:
                counts = await self.probe()
                failed = sum(1 for p in calls if p.error)
                if counts["streams_started"] >= target - failed and (placing.done() or failed):
                    break
                await asyncio.sleep(0.1)
            await placing
            up_s = time.monotonic() - t_ramp
            up = counts["streams_started"] - base["streams_started"]
            log(f"  {up}/{self.n} streams up {up_s:.1f} s after the first call; settling "
                f"{a.settle:.0f} s, then measuring {a.seconds:.0f} s ...")  # fmt: skip
            await asyncio.sleep(a.settle)
            procs = {name: self.stack.pid(name) for name in self.stack.procs}
            cpu0 = {name: cpu_seconds(p) for name, p in procs.items()}
            loop0 = cpu_seconds(pid, task=pid)
            sys0, w0 = cpu_times(), time.monotonic()
            with profiler(a.py_spy, self.n, pid, log):
                await asyncio.sleep(a.seconds)
            w1 = time.monotonic()
            cpu1 = {name: cpu_seconds(p) for name, p in procs.items()}
            loop1 = cpu_seconds(pid, task=pid)
            sys1, rss1 = cpu_times(), rss_mb(pid)
            carrier_rss = rss_mb(procs["carrier"])
            during = await self.probe()
            log("  window closed; waiting for the calls to end and persist ...")
            unfinished = await self.wait_persisted(calls, a.persist_timeout)
            await asyncio.sleep(1.0)
            sem = asyncio.Semaphore(8)

            async def fetch_details(p: Placed) -> None:
                if not p.uuid:
                    return
                async with sem:
                    p.turns = await self.fetch_json(f"{self.api}/api/calls/{p.uuid}/turns/",
                                                    headers=self.headers)  # fmt: skip
                    if p.sid:
                        p.report = await self.fetch_json(
                            f"{self.stack.urls['carrier']}/sandbox/calls/{p.sid}.json",
                            headers=self.carrier_auth,
                        )

            await asyncio.gather(*(fetch_details(p) for p in calls))
            sent_late = {s["stream_sid"]: [s["late_sent_ts"], s["late_sent_ms"]]
                         for p in calls for s in p.report.get("streams", [])}  # fmt: skip
            figures = await self.window_figures(w0, w1, sent_late)
            ramp_figures = await self.window_figures(t_ramp, w0, sent_late)
        wall = w1 - w0
        cpu = {name: round(100 * (cpu1[name] - cpu0[name]) / wall, 1) for name in procs}
        busy = {c: round(100 * (sys1[c][0] - sys0[c][0]) / (sys1[c][1] - sys0[c][1]), 1)
                for c in sys1 if c in sys0 and sys1[c][1] > sys0[c][1]}  # fmt: skip
        return self.summarise(
            calls, figures, during, base, unfinished,
            window={"seconds": round(wall, 2), "streams_up": up, "ramp_s": round(ramp, 2),
                    "settle_s": a.settle, "ramp_inbound_lag_ms": ramp_figures["inbound_lag_ms"],
                    "ramp_loop_lag_ms": ramp_figures["loop_lag_ms"],
                    "all_up_after_s": round(up_s, 2)},
            resources={"server_cpu_percent": cpu["server"], "cpu_percent": cpu,
                       "server_loop_thread_cpu_percent": round(100 * (loop1 - loop0) / wall, 1),
                       "cpu_busy_percent": busy, "server_rss_mb": [round(rss0, 1), round(rss1, 1)],
                       "carrier_rss_mb": round(carrier_rss, 1),
                       "load_avg": [round(x, 2) for x in os.getloadavg()]},
            warm=warm,
        )  # fmt: skip

    # --- counting -------------------------------------------------------------------------------
    def summarise(self, calls, figures, during, base, unfinished, *, window, resources, warm):
        n = self.n
        probe_streams = figures["streams"]
        lost_caller = lost_agent = extra = said_total = 0
        frames_sent = frames_in = dropped = carrier_late = carrier_unlisted = reply_timeouts = 0
        carrier_lag_max = 0.0
        failed: list[dict] = []
        per_call = []
        for p in calls:
            reasons = []
            if p.error:
                reasons.append(p.error)
            status = p.call.get("status")
            if p.uuid and status != "completed":
                reasons.append(f"status {status}")
            if p in unfinished:
                reasons.append("not finalised in time")
            callee = p.report.get("callee", {})
            if p.report and p.report.get("ended_by") != "callee":
                reasons.append(f"ended by {p.report.get('ended_by')!r}, not the callee's hang-up")
            said = len(callee.get("said", []))
            said_total += said
            callers = sum(1 for t in p.turns if t["speaker"] == "caller")
            agents = sum(1 for t in p.turns if t["speaker"] == "agent")
            # every line the callee spoke is a caller turn; the greeting + one reply per line
            lc, la = max(0, said - callers), max(0, 1 + said - agents)
            lost_caller += lc
            lost_agent += la
            extra += max(0, callers - said) + max(0, agents - 1 - said)
            timeouts = sum(1 for e in callee.get("log", []) if e.get("event") == "timeout")
            reply_timeouts += timeouts
            for s in p.report.get("streams", []):
                sent = s.get("frames_sent", 0)
                got = probe_streams.get(s.get("stream_sid"), {}).get("frames_in", 0)
                frames_sent += sent
                frames_in += got
                dropped += max(0, sent - got)
                carrier_late += s.get("late_ticks", 0)
                carrier_unlisted += s["late_sent_unlisted"]
                carrier_lag_max = max(carrier_lag_max, s.get("max_lag_ms", 0.0))
            if p.uuid and not p.report.get("streams"):
                reasons.append("no media stream")
            if reasons:
                failed.append({"call": p.uuid or p.to, "reasons": reasons})
            per_call.append({
                "call": p.uuid, "sid": p.sid, "api_ms": _r(p.api_ms), "status": status,
                "end_reason": p.call.get("end_reason"), "said": said, "caller_turns": callers,
                "agent_turns": agents, "agent_utterances_heard": callee.get("agent_utterances"),
                "reply_timeouts": timeouts, "lost": lc + la,
            })  # fmt: skip
        rss0, rss1 = resources["server_rss_mb"]
        probe_mb = figures["probe_bytes"] / 2**20
        mb_per_call = (rss1 - rss0 - probe_mb) / n if n else math.nan
        api = sorted(p.api_ms for p in calls if p.api_ms is not None)
        lag = figures["inbound_lag_ms"]
        return {
            "calls": n,
            "inbound_lag_ms": lag,
            "inbound_lag_from_schedule_ms": figures["inbound_lag_from_schedule_ms"],
            "loop_lag_ms": figures["loop_lag_ms"],
            "gc_pause_ms": figures["gc_pause_ms"],
            "gc_freed_objects": figures["gc_freed_objects"],
            "inbound_lag_by_second": figures["inbound_lag_by_second"],
            "frames": {
                "inbound_sent": frames_sent,
                "inbound_processed": frames_in,
                "inbound_dropped": dropped,
                "outbound_late": figures["outbound_late_frames"],
                "outbound_late_gap_ms": figures["outbound_late_gap_ms"],
                "outbound_total": figures["outbound_frames_total"],
                "carrier_late_ticks": carrier_late,
                "carrier_late_sends_in_window": figures["inbound_frames_sent_late"],
                "carrier_late_sends_unlisted": carrier_unlisted,
                "carrier_streams_matched": figures["sent_late_streams_known"],
                "carrier_max_lag_ms": round(carrier_lag_max, 1),
            },
            "cpu_percent_per_call": round(resources["server_cpu_percent"] / n, 2) if n else None,
            "mb_per_call": round(mb_per_call, 2),
            "turns": {
                "caller_lines_spoken": said_total,
                "lost_caller": lost_caller,
                "lost_agent": lost_agent,
                "lost": lost_caller + lost_agent,
                "extra": extra,
                "reply_timeouts": reply_timeouts,
            },
            "failed_calls": len(failed),
            "failures": failed[:20],
            "api_create_ms": {
                "p50": _r(_pct(api, 50)),
                "p99": _r(_pct(api, 99)),
                "max": _r(api[-1] if api else None),
            },
            "window": {
                **window,
                "streams_ended_in_window": during["streams_ended"] - base["streams_ended"],
            },
            "resources": {**resources, "probe_mb": round(probe_mb, 2)},
            "warmup": {"api_ms": _r(warm.api_ms), "status": warm.call.get("status")}
            if warm
            else None,
            "per_call": per_call,
        }


def _pct(data: list[float], q: float) -> float | None:
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@contextlib.contextmanager
def profiler(output: Path | None, n: int, pid: int, log):
    """py-spy on the server for the measured window only, on CPU 1 when pinned. Blocking mode
    (the server is paused ~100 times a second for each sample): non-blocking sampling of a
    saturated server returns torn, unclassifiable stacks. The window's figures are then not the
    unprofiled server's."""
    if output is None:
        yield
        return
    path = output.with_name(f"{output.stem}.n{n}{output.suffix or '.txt'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--rate", "100", "--threads",
            "--format", "raw", "--output", str(path)]  # fmt: skip
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", "1", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if path.exists():
            log(f"  py-spy samples saved to {path}")
        else:
            log(f"  py-spy failed: {proc.stderr.read().decode(errors='replace')[-500:]}")


# --- stack per level ---------------------------------------------------------------------------
def make_token(stack: Stack) -> str:
    """An operator and its API token in the run's database (not `ensure_operator`, which would
    overwrite var/operator_token of the checkout)."""
    key = secrets.token_hex(20)
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        "u, _ = get_user_model().objects.get_or_create(username='bench-operator', "
        "defaults={'is_staff': True, 'is_superuser': True})\n"
        f"Token.objects.filter(user=u).delete(); Token.objects.create(user=u, key='{key}')\n"
    )
    stack._manage("shell", "-c", code)
    return key


# A fixed pure-Python workload: this machine's speed varies run to run (shared hosts), by up to 2x
# here; the same N costs the same instructions, so CPU figures are comparable only beside this.
_REFERENCE = (
    "import time\nt = time.process_time()\nx = 0\nfor i in range(3_000_000):\n    x += i * i\n"
    "print(time.process_time() - t)"
)


def reference_ms(pin: bool) -> float:
    """The best of three runs of the reference workload on the server's core, in ms."""
    argv = [sys.executable, "-c", _REFERENCE]
    if pin:
        argv = ["taskset", "-c", "0", *argv]
    runs = [float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]  # fmt: skip
    return round(min(runs) * 1000, 1)


def run_level(n: int, server: str, args, root: Path, log) -> dict:
    workdir = root / f"{server}-n{n}"
    scenarios = workdir / "scenarios"
    scenarios.mkdir(parents=True)
    ramp = max(args.min_ramp, n / RAMP_RATE)
    exchanges = args.exchanges or math.ceil(
        (args.seconds + ramp + args.settle + 10) / EXCHANGE_MIN_S
    )
    (scenarios / "load.yaml").write_text(scenario_yaml(exchanges))
    (scenarios / "load-warmup.yaml").write_text(scenario_yaml(1, "load-warmup"))
    carrier = ["--voice", "synthetic", "--no-record", "--scenario-dir", str(scenarios),
               "--default-scenario", "load"]  # fmt: skip
    stack = Stack(workdir, Injected(), Script(), pin=not args.no_pin, carrier=carrier,
                  extra_env={"BENCH_PROBE": "1"},
                  server=server)  # fmt: skip
    reference = reference_ms(stack.pin)
    started = time.monotonic()
    with stack:
        log(f"N={n}: {server} pid {stack.server_pid} on {stack.http_url}, carrier "
            f"{stack.urls['carrier']}, {exchanges} exchanges a call")  # fmt: skip
        token = make_token(stack)
        if stack.pin:
            os.sched_setaffinity(0, {1})  # the bench shares the carrier's and emulators' core
        row = asyncio.run(Level(stack, token, n, args, log).run())
    row["window"]["exchanges_scripted"] = exchanges
    row["window"]["level_seconds"] = round(time.monotonic() - started, 1)
    row["pinned"] = stack.pin
    row["server"] = server
    row["resources"]["cpu0_reference_ms"] = reference
    return row


# --- output ------------------------------------------------------------------------------------
HEADER = ("| server | N | inbound lag p50 / p99 ms | p99 with the carrier's lateness "
          "| loop lag p99 ms | late out / dropped in frames "
          "| CPU %/call | MB/call | turns lost | failed calls |")  # fmt: skip


def table(rows: list[dict]) -> str:
    out = [HEADER, "|" + "---|" * 10]
    for r in rows:
        lag, loop, f = r["inbound_lag_ms"], r["loop_lag_ms"], r["frames"]
        out.append(
            f"| {r['server']} | {r['calls']} | {lag.get('p50', '-')} / {lag.get('p99', '-')} "
            f"| {r['inbound_lag_from_schedule_ms'].get('p99', '-')} "
            f"| {loop.get('p99', '-')} | {f['outbound_late']} / {f['inbound_dropped']} "
            f"| {r['cpu_percent_per_call']} | {r['mb_per_call']} | {r['turns']['lost']} "
            f"| {r['failed_calls']} |"
        )
    return "\n".join(out)


def gc_pauses(by_gen: dict) -> str:
    """'gen2 4x max 81.2 (sum 240)', per generation that ran in the window."""
    parts = []
    for gen, d in sorted(by_gen.items()):
        if d.get("n"):
            total = round(d["mean"] * d["n"])
            parts.append(f"{gen} {d['n']}x p50 {d['p50']} max {d['max']} (sum {total}) ms")
    return ", ".join(parts) or "none"


def details(rows: list[dict]) -> str:
    out = []
    for r in rows:
        lag, f, res, t = r["inbound_lag_ms"], r["frames"], r["resources"], r["turns"]
        out.append(
            f"{r['server']} N={r['calls']}: lag p90 {lag.get('p90')} p99.9 {lag.get('p999')} max {lag.get('max')}"
            f" ms over {lag.get('n')} frames; server {res['server_cpu_percent']} % CPU "
            f"(event loop thread {res['server_loop_thread_cpu_percent']} %), "
            f"RSS {res['server_rss_mb'][0]} -> {res['server_rss_mb'][1]} MB; CPU busy "
            f"{res['cpu_busy_percent']}; carrier {res['cpu_percent'].get('carrier')} % "
            f"(late ticks {f['carrier_late_ticks']}, max {f['carrier_max_lag_ms']} ms; "
            f"{f['carrier_late_sends_in_window']} frames of the window sent > 1 ms late); "
            f"{t['caller_lines_spoken']} caller lines, {t['reply_timeouts']} reply timeouts, "
            f"{t['extra']} extra turns; create p50 {r['api_create_ms']['p50']} ms; "
            f"GC pauses {gc_pauses(r['gc_pause_ms'])}, freed {r['gc_freed_objects']} objects; "
            f"CPU 0 reference workload {res.get('cpu0_reference_ms')} ms (lower: faster machine)"
        )
        for f in r["failures"][:5]:
            out.append(f"  failed: {f['call']}: {'; '.join(f['reasons'])}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--calls", default="10,50,100,200", help="comma-separated N (default %(default)s)"
    )
    p.add_argument("--seconds", type=float, default=30.0, help="measured window at full N")
    p.add_argument("--exchanges", type=int, default=0,
                   help="lines each callee says (default: enough to outlast the window)")  # fmt: skip
    p.add_argument("--min-ramp", type=float, default=2.0, help="shortest ramp, seconds")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds between the last stream starting and the window opening",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up call")
    p.add_argument("--persist-timeout", type=float, default=180.0)
    p.add_argument(
        "--server",
        default="daphne",
        help=f"comma-separated ASGI servers to measure, each at every N ({', '.join(SERVERS)}; "
        "default %(default)s)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to its own CPU")
    p.add_argument("--json", type=Path, help="also save the figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    p.add_argument("--py-spy", type=Path, metavar="PATH",
                   help="sample the server during each window (PATH.nN.txt, collapsed stacks)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    a = p.parse_args(argv)
    try:
        levels = [int(x) for x in a.calls.split(",") if x.strip()]
    except ValueError:
        p.error("--calls takes comma-separated integers")
    if not levels or min(levels) < 1 or a.seconds <= 0:
        p.error("--calls must be >= 1 and --seconds > 0")
    servers = [x.strip() for x in a.server.split(",") if x.strip()]
    if not servers or set(servers) - set(SERVERS):
        p.error(f"--server takes a comma-separated list of {', '.join(SERVERS)}")

    def log(message: str) -> None:
        if not a.quiet:
            print(message, file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="callcenter-load-"))
    rows = []
    try:
        for server in servers:
            for n in levels:
                rows.append(run_level(n, server, a, root, log))
                log(table(rows[-1:]).splitlines()[-1])
    finally:
        if a.keep:
            log(f"work directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    print(details(rows))
    if a.json:
        config = {"seconds": a.seconds, "calls": levels, "ramp_rate": RAMP_RATE,
                  "servers": servers,
                  "injected_ms": asdict(Injected()), "cpus": os.cpu_count(),
                  "python": sys.version.split()[0], "target_p99_ms": TARGET_P99_MS}  # fmt: skip
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"config": config, "levels": rows}, indent=2))
        log(f"figures saved to {a.json}")
    bad = any(r["turns"]["lost"] or r["failed_calls"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
