"""Figures from a bench run: percentiles, the per-stage breakdown, the printed table and JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bench.caller import TurnTiming
from bench.db import StoredTurn
from bench.stack import Injected

# The Deepgram emulator sees a 300 ms endpoint on the 15th or, by float rounding of its audio
# clock (the endpoint test in calls/sandbox/emulators/deepgram_listen.py, ListenSession._step),
# the 16th silent 20 ms frame: an STT path this much over the injected latency is taken as the 16th.
LATE_ENDPOINT_MS = 12.0
FRAME_MS = 20.0
# Targets from the issue: our own overhead on top of the injected provider latencies.
TARGETS = {"overhead_p50_ms": 30.0, "overhead_p95_ms": 60.0, "greeting_ms": 150.0}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Iterable[float | None]) -> dict:
    data = [v for v in values if v is not None and not math.isnan(v)]
    if not data:
        return {"n": 0}
    return {
        "n": len(data),
        "p50": round(percentile(data, 50), 1),
        "p95": round(percentile(data, 95), 1),
        "min": round(min(data), 1),
        "max": round(max(data), 1),
    }


def turn_figures(timing: TurnTiming, caller: StoredTurn | None, reply: StoredTurn | None,
                 injected: Injected) -> dict:  # fmt: skip
    """One caller turn: the wire measurement, the server's own figures, and the stages between."""
    wire = timing.voice_to_voice_ms
    row: dict = {
        "voice_to_voice_ms": _r(wire),
        "overhead_ms": _r(wire - injected.total) if wire is not None else None,
        "client_send_lag_ms": _r(timing.send_lag_ms),
    }
    lat = reply.latency if reply else {}
    row["server"] = lat
    if wire is None or not lat or caller is None or caller.ended_at is None:
        return row
    vad_offset = (caller.ended_at.timestamp() - timing.speech_end_wall) * 1000
    g = lat.get
    stages = {
        "speech_end_to_vad_estimate": vad_offset,
        "stt_path": g("stt_final_ms", 0) - injected.stt_final,
        "turn_to_llm_request": g("llm_request_ms", 0) - g("stt_final_ms", 0),
        "llm_path": g("llm_first_token_ms", 0) - g("llm_request_ms", 0) - injected.llm_first_token,
        "chunker_to_tts_request": g("tts_request_ms", 0) - g("llm_first_token_ms", 0),
        "tts_path": g("tts_first_byte_ms", 0) - g("tts_request_ms", 0) - injected.tts_first_byte,
        "playout_first_frame": g("first_audio_ms", 0) - g("tts_first_byte_ms", 0),
        "socket_to_caller": wire - vad_offset - g("voice_to_voice_ms", 0),
    }
    row["stages_ms"] = {k: _r(v) for k, v in stages.items()}
    return row


STAGE_LABELS = {
    "speech_end_to_vad_estimate": "caller's speech end -> server's speech-end estimate (VAD)",
    "stt_path": "speech-end estimate -> STT final, minus the injected {stt:.0f}",
    "turn_to_llm_request": "STT final -> LLM request (turn-taking, prompt)",
    "llm_path": "LLM request -> first token, minus the injected {llm:.0f}",
    "chunker_to_tts_request": "first token -> TTS request (chunker)",
    "tts_path": "TTS request -> first byte, minus the injected {tts:.0f}",
    "playout_first_frame": "TTS first byte -> first frame sent (playout)",
    "socket_to_caller": "first frame sent -> arrives at the caller (socket)",
}


def ours_estimate(row: dict, floors: dict) -> float | None:
    """One turn's overhead minus what the emulators added (their floors, the late endpoint)."""
    stages = row.get("stages_ms")
    if row["overhead_ms"] is None or not stages:
        return None
    late = FRAME_MS if stages["stt_path"] >= LATE_ENDPOINT_MS else 0.0
    fl = [floors.get(k, {}).get("p50") for k in ("stt_base", "llm", "tts")]
    if None in fl:
        return None
    return round(row["overhead_ms"] - late - sum(fl), 1)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def table(figures: dict) -> str:
    """The human-readable report."""
    inj = figures["config"]["injected_ms"]
    lines = [
        "",
        f"voice-to-voice bench: {figures['config']['turns']} turns "
        f"({figures['config']['turns_per_call']} per call), injected STT {inj['stt_final']:.0f} + "
        f"LLM {inj['llm_first_token']:.0f} + TTS {inj['tts_first_byte']:.0f} = "
        f"{inj['total']:.0f} ms, server pinned: {figures['config']['pinned']}",
        "",
        f"{'measured at the caller (ms)':<58}{'p50':>8}{'p95':>8}{'min':>8}{'max':>8}{'n':>5}"
        f"{'target':>10}",
    ]
    t = TARGETS

    def row(label: str, s: dict, target: str = "") -> str:
        if not s.get("n"):
            return f"{label:<58}{'-':>8}{'-':>8}{'-':>8}{'-':>8}{0:>5}{target:>10}"
        return (f"{label:<58}{s['p50']:>8.1f}{s['p95']:>8.1f}{s['min']:>8.1f}{s['max']:>8.1f}"
                f"{s['n']:>5}{target:>10}")  # fmt: skip

    lines.append(
        row("voice-to-voice (speech end -> first agent frame)", figures["voice_to_voice_ms"])
    )
    lines.append(row(f"our overhead (voice-to-voice - {inj['total']:.0f})", figures["overhead_ms"],
                     f"{t['overhead_p50_ms']:.0f}/{t['overhead_p95_ms']:.0f}"))  # fmt: skip
    lines.append(row("server's own voice_to_voice_ms (from its VAD estimate)",
                     figures["server_voice_to_voice_ms"]))  # fmt: skip
    g = figures["greeting_first_frame_ms"]
    lines.append(row("greeting first frame after `start`, cold cache", g["cold"],
                     f"<={t['greeting_ms']:.0f}"))  # fmt: skip
    lines.append(row("greeting first frame after `start`, pre-synthesised", g["warm"],
                     f"<={t['greeting_ms']:.0f}"))  # fmt: skip
    if g.get("first_call") is not None:
        lines.append(f"{'greeting of the first call after server start (cold process)':<58}"
                     f"{g['first_call']:>8.1f}")  # fmt: skip
    lines += ["", f"{'overhead by stage (ms)':<58}{'p50':>8}{'p95':>8}{'min':>8}{'max':>8}{'n':>5}"]
    labels = {k: v.format(stt=inj["stt_final"], llm=inj["llm_first_token"],
                          tts=inj["tts_first_byte"]) for k, v in STAGE_LABELS.items()}  # fmt: skip
    for key, s in figures["breakdown_ms"].items():
        lines.append(row(labels[key], s))
    floors = figures.get("emulator_floor_ms", {})
    if floors:
        late = sum(1 for v in figures.get("emulator_floor_samples", {}).get("stt", [])
                   if v >= LATE_ENDPOINT_MS)  # fmt: skip
        lines += [
            "",
            f"{'the emulators alone, plain client (ms over injected)':<58}"
            f"{'p50':>8}{'p95':>8}{'min':>8}{'max':>8}{'n':>5}",
            row("Deepgram final after the end of speech", floors["stt"]),
            row(
                f"  only the 15th-frame endpoints ({late} fell on the 16th)",
                floors.get("stt_base", {}),
            ),
            row("OpenAI first token", floors["llm"]),
            row("ElevenLabs first byte", floors["tts"]),
            "",
            row(
                "our overhead net of the emulators (estimate)",
                figures.get("overhead_ours_estimate_ms", {}),
            ),
            "  = overhead, minus 20 ms where the endpoint fell on the 16th frame, minus the p50s",
            "    of the 15th-frame, first-token and first-byte floors above",
        ]
    p = figures["problems"]
    lines += [
        "",
        f"turns without a reply: {p['turns_without_reply']}, `clear`s received: {p['clears']}, "
        f"client send lag max: {p['client_send_lag_max_ms']:.1f} ms",
        f"server CPU while the calls ran (one call at a time): "
        f"{figures['config'].get('server_cpu_percent_one_call', math.nan):.1f}% of one core",
        f"targets met: overhead p50 {_yes(figures['targets_met']['overhead_p50'])}, "
        f"p95 {_yes(figures['targets_met']['overhead_p95'])}, "
        f"greeting (pre-synthesised) {_yes(figures['targets_met']['greeting_warm'])}, "
        f"greeting (cold) {_yes(figures['targets_met']['greeting_cold'])}",
        "",
    ]
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
