"""Cached reads shared by pages; the cache key is the server and token, never the client object."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import streamlit as st

from ui.api_client import TERMINAL_STATUSES, ApiClient, Call, Persona, Turn


@st.cache_data(ttl=30, show_spinner=False)
def _personas(_api: ApiClient, base_url: str, token: str) -> list[Persona]:
    return _api.personas()


def personas(api: ApiClient) -> list[Persona]:
    return _personas(api, api.config.base_url, api.config.token)


def forget_personas() -> None:
    _personas.clear()


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _ended_turns(_api: ApiClient, base_url: str, token: str, call_id: str) -> list[Turn]:
    return _api.turns(call_id)


def turns_by_call(api: ApiClient, calls: Sequence[Call]) -> dict[str, list[Turn]]:
    """Turns of each call; an ended call's turns no longer change, so they are cached."""
    out: dict[str, list[Turn]] = {}
    for call in calls:
        if call.get("status") in TERMINAL_STATUSES:
            out[call["id"]] = _ended_turns(api, api.config.base_url, api.config.token, call["id"])
        else:
            out[call["id"]] = api.turns(call["id"])
    return out


def today_calls(api: ApiClient) -> list[Call]:
    """Calls created since local midnight (the console's clock, not the server's)."""
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return list(api.iter_calls({"created_after": midnight.isoformat()}))
