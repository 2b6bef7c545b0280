"""mu-law codec (cross-checked against the stdlib audioop), framing, resampling and levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from calls.core import audio

with warnings.catch_warnings():  # deprecated, present on 3.11: the reference the tables must match
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_PCM16 = np.arange(65536, dtype=np.uint16).view(np.int16)


def _sine(
    freq: float, amplitude: float, seconds: float, rate: int = audio.SAMPLE_RATE
) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_encode_matches_audioop_on_every_16_bit_input():
    assert audio.pcm16_to_mulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16.tobytes(), 2)


def test_encode_accepts_little_endian_bytes():
    assert audio.pcm16_to_mulaw(ALL_PCM16.tobytes()) == audioop.lin2ulaw(ALL_PCM16.tobytes(), 2)


def test_decode_matches_audioop_on_every_code():
    codes = bytes(range(256))
    assert audio.mulaw_to_pcm16_bytes(codes) == audioop.ulaw2lin(codes, 2)
    assert audio.mulaw_to_pcm16(codes).tobytes() == audioop.ulaw2lin(codes, 2)


def test_round_trip_equals_audioop_round_trip():
    pcm = ALL_PCM16.tobytes()
    expected = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
    assert audio.mulaw_to_pcm16_bytes(audio.pcm16_to_mulaw(ALL_PCM16)) == expected


def test_constants_and_silence():
    assert (audio.SAMPLE_RATE, audio.FRAME_MS, audio.FRAME_BYTES) == (8000, 20, 160)
    assert audio.DECODE_TABLE[audio.MULAW_SILENCE] == 0
    assert audio.silence(20) == bytes([0xFF]) * 160
    assert len(audio.silence(1000)) == 8000


def test_frame_splitter_yields_exact_frames_across_irregular_chunks():
    stream = bytes(range(256)) * 10  # 2560 bytes = 16 frames
    splitter = audio.FrameSplitter()
    frames: list[bytes] = []
    for size in (1, 159, 161, 7, 320, 1000, 912):
        chunk, stream = stream[:size], stream[size:]
        frames += splitter.push(chunk)
    assert all(len(f) == 160 for f in frames)
    assert b"".join(frames) == (bytes(range(256)) * 10)[: len(frames) * 160]
    assert len(frames) == 16 and splitter.pending == 0
    assert splitter.flush() is None


def test_frame_splitter_keeps_and_pads_the_remainder():
    splitter = audio.FrameSplitter()
    assert splitter.push(b"\x01" * 200) == [b"\x01" * 160]
    assert splitter.pending == 40
    assert splitter.flush() == b"\x01" * 40 + b"\xff" * 120
    splitter.push(b"\x02" * 10)
    assert splitter.flush(pad=None) == b"\x02" * 10


def test_split_frames():
    frames, rest = audio.split_frames(b"\x00" * 500)
    assert [len(f) for f in frames] == [160, 160, 160] and rest == b"\x00" * 20


def test_rms_and_dbfs_of_mulaw_frames():
    assert audio.mulaw_rms(audio.silence(20)) == 0.0
    assert audio.mulaw_dbfs(audio.silence(20)) == -120.0
    loud = audio.pcm16_to_mulaw(_sine(400, 0.9, 0.02))
    reference = audioop.rms(audio.mulaw_to_pcm16_bytes(loud), 2)
    assert audio.mulaw_rms(loud) == pytest.approx(reference, rel=0.01)
    quiet = audio.pcm16_to_mulaw(_sine(400, 0.1, 0.02))
    assert audio.mulaw_dbfs(quiet) == pytest.approx(-23.0, abs=0.5)  # sine rms = peak - 3 dB


def test_float_conversions_clip():
    pcm = audio.float_to_pcm16(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32))
    assert pcm.tolist() == [-32767, -32767, 0, 16383, 32767, 32767]
    assert audio.pcm16_to_float(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]


def test_streaming_resampler_matches_one_shot():
    tone = _sine(440, 0.5, 1.0)
    one_shot = audio.resample(tone, 8000, 16000)
    stream = audio.Resampler(8000, 16000)
    chunks = [stream.process(tone[i : i + 160]) for i in range(0, len(tone), 160)]
    chunks.append(stream.process(np.zeros(0, np.int16), last=True))
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(one_shot) == 16000
    assert np.max(np.abs(streamed.astype(int) - one_shot.astype(int))) <= 2


def test_resample_down_keeps_level():
    tone = _sine(300, 0.5, 0.5, rate=24000)
    down = audio.resample(tone, 24000, 8000)
    assert len(down) == 4000
    assert np.sqrt(np.mean(down[400:-400].astype(float) ** 2)) == pytest.approx(
        0.5 * 32767 / 2**0.5, rel=0.02
    )
