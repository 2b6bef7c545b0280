"""Cached reads shared by pages; the cache key is the server and token, never the client object."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from ui.api_client import ApiClient, Persona


@st.cache_data(ttl=30, show_spinner=False)
def _personas(_api: ApiClient, base_url: str, token: str) -> list[Persona]:
    return _api.personas()


def personas(api: ApiClient) -> list[Persona]:
    return _personas(api, api.config.base_url, api.config.token)


def forget_personas() -> None:
    _personas.clear()


def today() -> dict[str, str]:
    """The filter for calls created since local midnight (the console's clock, not the server's)."""
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return {"created_after": midnight.isoformat()}
