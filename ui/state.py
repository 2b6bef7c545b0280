"""Streamlit glue shared by pages: the API client, error display, flash messages, navigation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import streamlit as st

from ui.api_client import ApiClient, ApiError, Config, ServerDown, Unauthorized

CALLS_PAGE = "views/calls.py"
LIVE_PAGE = "views/live.py"
HISTORY_PAGE = "views/history.py"
PERSONAS_PAGE = "views/personas.py"
PLAYGROUND_PAGE = "views/playground.py"


def _secrets() -> Mapping[str, Any]:
    try:
        return st.secrets if st.secrets.load_if_toml_exists() else {}
    except Exception:  # a broken secrets.toml must not take the console down
        return {}


def client() -> ApiClient:
    """The session's API client; rebuilt when the configured URL or token changes."""
    config = Config.load(_secrets())
    current = st.session_state.get("_api_client")
    if not isinstance(current, ApiClient) or current.config != config:
        current = ApiClient(config)
        st.session_state["_api_client"] = current
    return current


def show_error(exc: ApiError, *, where: Any = st) -> None:
    """An API failure as an operator-readable message."""
    if isinstance(exc, ServerDown):
        where.error(f"Server unreachable: {exc}", icon=":material/cloud_off:")
    elif isinstance(exc, Unauthorized):
        where.error(
            f"Not authorised: {exc}. Set CALLCENTER_API_TOKEN (or var/operator_token).",
            icon=":material/lock:",
        )
    else:
        where.error(str(exc), icon=":material/error:")


def show_field_errors(errors: Mapping[str, list[str]], slots: Mapping[str, Any]) -> list[str]:
    """Put each field's messages in its slot; return messages for fields without one."""
    rest: list[str] = []
    for name, messages in errors.items():
        if name in slots:
            slots[name].error("; ".join(messages), icon=":material/error:")
        else:
            general = name in ("detail", "non_field_errors")
            rest.extend(messages if general else [f"{name}: {m}" for m in messages])
    return rest


def flash(message: str, kind: str = "success") -> None:
    """Show `message` at the top of the next run (survives st.rerun / st.switch_page)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)


def open_call(call_id: str) -> NoReturn:
    """Switch to the live/review view of `call_id`."""
    st.session_state["call_id"] = call_id
    st.switch_page(LIVE_PAGE, query_params={"call": call_id})
