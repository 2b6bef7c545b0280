"""The bench's side of the database: calls and stream tokens before a run, stored turns after.

Runs in the bench process against the server's SQLite file (same settings, same environment), so
the server sees exactly what the dialler would have stored for a real outbound call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime

PERSONA = "myra-recruiting"


@dataclass
class PlacedCall:
    uuid: str
    params: dict[str, str]  # the <Stream> custom parameters: call uuid and single-use token
    greeting: str


@dataclass
class StoredTurn:
    speaker: str
    text: str
    started_at: datetime | None
    ended_at: datetime | None
    latency: dict = field(default_factory=dict)


def setup(env: dict[str, str]) -> None:
    """Configure Django in this process with exactly the server's environment."""
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)
    import django

    django.setup()


def place_call(index: int, run: str) -> PlacedCall:
    """Store an outbound call with a greeting unique to it (so no other call warms its cache)."""
    from agents.models import Persona
    from calls import services
    from calls.telephony.tokens import stream_params

    greeting = (
        f"Hi caller {index} of run {run}, this is Myra from Escade Networks. Is now a good time?"
    )
    call = services.call_create(
        persona=Persona.objects.get(slug=PERSONA), to="+14155550100",
        variables={"applicant_name": f"Caller {index}", "position": "SRE"},
        welcome_message=greeting,
    )  # fmt: skip
    return PlacedCall(str(call.uuid), stream_params(call), greeting)


def stored_turns(call_uuid: str, *, wait_s: float = 10.0) -> list[StoredTurn]:
    """The call's turns in order, once the server has finalised the call."""
    from calls.models import Call, Turn

    deadline = time.monotonic() + wait_s
    while Call.objects.get(uuid=call_uuid).ended_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return [
        StoredTurn(t.speaker, t.text, t.started_at, t.ended_at, dict(t.latency or {}))
        for t in Turn.objects.filter(call__uuid=call_uuid).order_by("seq")
    ]
