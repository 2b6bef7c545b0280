"""The bench's provider emulators, one process each, with fixed latencies and short replies.

    python -m bench.emulators deepgram --port 0 --final-latency-ms 300 --text "Tell me more."
    python -m bench.emulators openai --port 0 --first-token-ms 250 --reply "Sure. What else?"
    python -m bench.emulators elevenlabs --port 0 --first-byte-ms 100

Same emulators as `python -m calls.sandbox.emulators.<name>`, with the two knobs their CLIs lack:
a scripted chat reply for every turn, and shorter synthetic speech (`--ms-per-char`) so the agent's
replies play quickly. Prints "<name> listening on <url>" once it serves.
"""

from __future__ import annotations

import argparse

from calls.sandbox.emulators.base import run_cli
from calls.sandbox.emulators.deepgram import DeepgramEmulator
from calls.sandbox.emulators.elevenlabs import ElevenLabsEmulator
from calls.sandbox.emulators.openai import OpenAIEmulator

# Replies scripted ahead: far more than any run has turns (the default reply would echo the caller).
SCRIPTED_REPLIES = 10_000


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=["deepgram", "openai", "elevenlabs"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--api-key", required=True)
    p.add_argument("--final-latency-ms", type=float, default=300.0, help="deepgram")
    p.add_argument("--text", default="Tell me more about the role.", help="deepgram transcript")
    p.add_argument("--first-token-ms", type=float, default=250.0, help="openai")
    p.add_argument("--token-delay-ms", type=float, default=0.0, help="openai")
    p.add_argument("--reply", default="Sure, I can help. What would you like to know?")
    p.add_argument("--first-byte-ms", type=float, default=100.0, help="elevenlabs")
    p.add_argument("--ms-per-char", type=float, default=20.0, help="elevenlabs speech length")
    a = p.parse_args(argv)
    if a.name == "deepgram":
        emu = DeepgramEmulator(
            api_key=a.api_key, final_latency_ms=a.final_latency_ms, default_text=a.text
        )
        app = emu.app()
    elif a.name == "openai":
        emu = OpenAIEmulator(
            api_key=a.api_key,
            first_token_latency=a.first_token_ms / 1000,
            token_delay=a.token_delay_ms / 1000,
            record_audio=False,
        )
        emu.script(*[a.reply] * SCRIPTED_REPLIES)
        app = emu.app()
    else:
        emu = ElevenLabsEmulator(
            api_key=a.api_key, first_byte_ms=a.first_byte_ms, ms_per_char=a.ms_per_char
        )
        app = emu.app()
    run_cli(app, host=a.host, port=a.port, name=f"{a.name} emulator")


if __name__ == "__main__":
    main()
