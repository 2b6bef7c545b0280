"""Who answers a sandbox call: a scripted callee, or another persona (agent-to-agent).

A persona the server has (`persona: <slug>`) answers as a second call into the server, bridged to
this one (bridge.py), when a number reaches it; a persona described in the scenario itself
(`agent_name`, ...) is run by the carrier (persona_callee.py), also as the fallback when no number
reaches the slug.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from calls.sandbox.callee import Callee

if TYPE_CHECKING:
    from calls.sandbox.sim_call import SimCall

log = logging.getLogger(__name__)


def make_party(call: SimCall):
    """The `media.Party` for `call` as its scenario says; the party's hang-up ends the call."""
    scenario = call.scenario
    persona = scenario.persona
    if persona is not None:
        if persona.get("slug"):
            from calls.sandbox.bridge import Bridge

            bridge = Bridge(call.carrier, call)
            if bridge.number or not persona.get("agent_name"):
                return bridge.caller
            log.warning(
                "call %s: no number reaches persona %r (INBOUND_PERSONAS); the carrier plays %s "
                "itself, outside the server", call.sid, persona["slug"], persona["agent_name"],
            )  # fmt: skip
        from calls.sandbox.persona_callee import PersonaCallee

        return PersonaCallee(scenario, hang_up=call._callee_hung_up)
    voice = call.carrier.voice_for(scenario.voice)
    return Callee(scenario, voice, hang_up=call._callee_hung_up, record=call.carrier.record)
