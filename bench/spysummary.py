"""Where the server's CPU goes, from py-spy's raw (collapsed) samples, by subsystem.

    python -m bench.spysummary var/load-spy.n200.txt [--other 15]

Each busy sample (idle waits excluded: epoll, an executor thread waiting for work) is assigned to
the first rule whose markers occur in its stack, in the order below; the rules follow one call's
path through the server (bench/README.md, "Profile").
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

IDLE = ("_worker (concurrent/futures/thread.py:81)", "EpollSelector.select", "Condition.wait",
        "_wait_for_tstate_lock", "select (selectors.py")  # fmt: skip
# (label, markers, on the event loop's thread?)
RULES: list[tuple[str, tuple[str, ...], bool]] = [
    ("DB thread: turn/event/status writes", ("Persister", "turn_append", "event_record",
     "call_update_outcome", "call_end", "_save_recording", "services.py"), False),
    ("DB thread: status callbacks + API views", ("twilio_signed", "rest_framework",
     "CallViewSet", "django/core/handlers"), False),
    ("DB thread: connect/close/commit (conn_max_age=0)", ("BaseDatabaseWrapper",
     "close_old_connections"), False),
    ("inbound: consumer.receive -> pipeline (parse, VAD, recorder, STT queue)",
     ("MediaStreamConsumer.receive",), True),
    ("bench probe", ("bench/probe.py", "MediaStreamConsumer._observe"), True),
    ("STT: Deepgram SDK send (websockets client, deflate)", ("DeepgramSTTSession._send_loop",), True),
    ("STT: Deepgram SDK receive (JSON + pydantic)", ("DeepgramSTTSession._receive",), True),
    ("LLM: OpenAI SDK + LLM processor", ("LLMProcessor",), True),
    ("TTS: ElevenLabs SDK + TTS processor", ("TTSProcessor",), True),
    ("outbound: playout pacing -> consumer.send", ("PlayoutProcessor",), True),
    ("HTTP requests on the loop (Django ASGI handler)", ("ASGIHandler", "django/core/handlers",
     "AsyncToSync", "SyncToAsync.__call__ (asgiref"), True),
    ("inbound: Channels per-message dispatch (await_many_dispatch)", ("await_many_dispatch",
     "MediaStreamConsumer.dispatch", "AsyncConsumer.__call__", "MediaStreamConsumer.__call__"),
     True),
    ("sockets: twisted/autobahn (or uvicorn) read, ws parse, writes", ("Connection.doRead",
     "WebSocketProtocol", "WebSocketAdapterProtocol", "FileDescriptor.doWrite", "callWithLogger",
     "uvicorn/protocols", "websockets/legacy/server"), True),
    ("session start/finalise", ("CallSession.", "MediaStreamConsumer._start",
     "MediaStreamConsumer._stop", "_claim"), True),
    ("event loop scheduling", ("BaseEventLoop._run_once",), True),
]  # fmt: skip


def summarise(path: Path) -> tuple[int, int, collections.Counter, collections.Counter]:
    cats: collections.Counter = collections.Counter()
    other: collections.Counter = collections.Counter()
    busy = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            idle += n
            continue
        busy += n
        main = "MainThread" in frames[0]
        for label, markers, on_main in RULES:
            if on_main == main and any(m in stack for m in markers):
                cats[label] += n
                break
        else:
            cats["other (event loop thread)" if main else "other (threads)"] += n
            other[frames[-1]] += n
    return busy, idle, cats, other


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--other", type=int, default=0, help="also list the top unclassified leaves")
    a = p.parse_args(argv)
    busy, idle, cats, other = summarise(a.path)
    print(f"{busy} busy samples ({idle} idle excluded)")
    for label, n in cats.most_common():
        print(f"{100 * n / max(busy, 1):5.1f} %  {label}")
    for leaf, n in other.most_common(a.other):
        print(f"         {100 * n / max(busy, 1):5.1f} %  {leaf}")


if __name__ == "__main__":
    main()
