"""Stereo call recording: caller left, agent right, both aligned on the stream's start."""

from __future__ import annotations

import io
import wave

import numpy as np

from calls.core.audio import DECODE_TABLE, SAMPLE_RATE
from calls.pipeline.recorder import StereoRecorder

CALLER, AGENT, SILENT = 0x10, 0x20, 0xFF


def channels(wav: bytes) -> tuple:
    with wave.open(io.BytesIO(wav)) as w:
        params = w.getparams()
        samples = np.frombuffer(w.readframes(params.nframes), dtype="<i2").reshape(-1, 2)
    return samples[:, 0], samples[:, 1], params


def level(code: int) -> int:
    return int(DECODE_TABLE[code])


def test_caller_left_agent_right_aligned_on_t0():
    rec = StereoRecorder(t0=50.0)
    for _ in range(50):  # one second of caller audio, 20 ms frames back to back
        rec.caller(bytes([CALLER]) * 160)
    rec.agent(bytes([AGENT]) * 160, play_at=50.5)  # heard half a second in
    rec.agent(bytes([AGENT]) * 160, play_at=50.52)
    rec.agent(bytes([AGENT]) * 160, play_at=51.5)  # after the caller stopped

    left, right, params = channels(rec.wav())
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, SAMPLE_RATE)
    assert rec.seconds == 1.52 and len(left) == round(1.52 * SAMPLE_RATE)
    assert (left[:8000] == level(CALLER)).all() and (left[8000:] == level(SILENT)).all()
    assert (right[:4000] == level(SILENT)).all()
    assert (right[4000:4320] == level(AGENT)).all()
    assert (right[4320:12000] == level(SILENT)).all()
    assert (right[12000:12160] == level(AGENT)).all()


def test_agent_audio_overwrites_in_place_and_never_lands_before_t0():
    rec = StereoRecorder(t0=10.0)
    rec.agent(bytes([AGENT]) * 160, play_at=9.0)  # before the stream started: at 0
    rec.agent(bytes([0x30]) * 80, play_at=10.01)  # overlaps the second half
    _, right, _ = channels(rec.wav())
    assert len(right) == 160
    assert (right[:80] == level(AGENT)).all() and (right[80:] == level(0x30)).all()


def test_the_recording_stops_at_its_maximum_length():
    rec = StereoRecorder(t0=0.0, max_seconds=1)
    for _ in range(60):
        rec.caller(bytes([CALLER]) * 160)
    rec.agent(bytes([AGENT]) * 160, play_at=0.99)  # would end past one second: dropped
    rec.agent(bytes([AGENT]) * 160, play_at=0.5)
    left, right, _ = channels(rec.wav())
    assert len(left) == SAMPLE_RATE
    assert (right[4000:4160] == level(AGENT)).all() and (right[7920:] == level(SILENT)).all()


def test_an_empty_recording_is_a_valid_empty_wav():
    rec = StereoRecorder(t0=0.0)
    assert rec.seconds == 0
    left, right, params = channels(rec.wav())
    assert params.nframes == 0 and len(left) == len(right) == 0
