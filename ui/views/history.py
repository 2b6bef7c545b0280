"""History: filter, page through and export past calls; open any of them for review."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from ui import data, export, metrics, state
from ui.api_client import ALL_STATUSES, ApiClient, ApiError, Call, NotFound, Persona

ANY = "(any)"
TABLE_COLUMNS = ["started", "direction", "number", "persona", "status", "duration", "stage",
                 "summary"]  # fmt: skip


def filter_widgets(personas: list[Persona]) -> dict[str, Any]:
    """The filter row; returns API query parameters (empty values left out)."""
    c1, c2, c3, c4 = st.columns([2, 2, 3, 1])
    dates = c1.date_input("Dates", value=(), key="history_dates", format="YYYY-MM-DD")
    slugs = [ANY, *(p["slug"] for p in personas)]
    persona = c2.selectbox("Persona", slugs, key="history_persona")
    statuses = c3.multiselect("Status", list(ALL_STATUSES), key="history_status")
    direction = c4.selectbox("Direction", [ANY, "outbound", "inbound"], key="history_direction")
    c5, c6 = st.columns(2)
    number = c5.text_input("Number contains", key="history_number")
    q = c6.text_input("Text search", key="history_q", help="Transcript, summary, extracted data.")
    return build_filters(
        dates=dates, persona=persona, statuses=statuses, direction=direction, number=number, q=q
    )


def build_filters(
    *,
    dates: Any = (),
    persona: str = ANY,
    statuses: list[str] | None = None,
    direction: str = ANY,
    number: str = "",
    q: str = "",
) -> dict[str, Any]:
    if isinstance(dates, date):
        dates = (dates,)
    days: list[date] = list(dates or ())
    filters: dict[str, Any] = {
        "date_from": days[0].isoformat() if days else None,
        # A range still being picked (one date) means that single day.
        "date_to": days[-1].isoformat() if days else None,
        "persona": None if persona == ANY else persona,
        "status": list(statuses or []),
        "direction": None if direction == ANY else direction,
        "number": number.strip(),
        "q": q.strip(),
    }
    return {k: v for k, v in filters.items() if v not in (None, "", [])}


def table(calls: list[Call]) -> pd.DataFrame:
    rows = [
        {
            "started": metrics.fmt_ts(c["created_at"], "%Y-%m-%d %H:%M"),
            "direction": c["direction"],
            "number": c["to_number"] if c["direction"] == "outbound" else c["from_number"],
            "persona": c["persona"],
            "status": c["status"],
            "duration": metrics.fmt_seconds(c.get("duration")),
            "stage": c.get("current_stage") or "",
            "summary": (c.get("summary") or "")[:120],
        }
        for c in calls
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def pager_key(filters: dict[str, Any]) -> str:
    """A page widget per filter set: changing a filter starts again at page 1."""
    digest = hashlib.sha1(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:12]
    return f"history_page_{digest}"


def results(api: ApiClient, filters: dict[str, Any]) -> None:
    key = pager_key(filters)
    page_no = st.session_state.get(key, 1)
    try:
        try:
            page = api.calls(filters, page=page_no)
        except NotFound:  # the list shrank under the page we were on
            page_no, page = 1, api.calls(filters)
    except ApiError as exc:
        state.show_error(exc)
        return
    calls = page["results"]
    if page.get("next"):
        st.session_state["history_per_page"] = len(calls)
    per_page = st.session_state.get("history_per_page") or max(1, len(calls))
    pages = max(1, math.ceil(page["count"] / per_page))
    st.caption(f"{page['count']} call(s) · page {page_no} of {pages} · select a row to open it")
    event = st.dataframe(
        table(calls), hide_index=True, on_select="rerun", selection_mode="single-row",
        key="history_table",
    )  # fmt: skip
    chosen = event.selection.rows if event else []
    if chosen and chosen[0] < len(calls):
        state.open_call(calls[chosen[0]]["id"])
    if pages > 1:
        st.pagination(pages, key=key)
    export_buttons(api, filters)


def export_buttons(api: ApiClient, filters: dict[str, Any]) -> None:
    """CSV/XLSX of every matching call (all pages), fetched only when a button is clicked."""

    def calls() -> list[Call]:
        # Runs on Streamlit's download thread: its own client, not the session's.
        return export.fetch_all(ApiClient(api.config), filters)

    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button(
        "Export CSV", data=lambda: export.to_csv(calls()), file_name="calls.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore", key="history_csv",
    )  # fmt: skip
    c2.download_button(
        "Export XLSX", data=lambda: export.to_xlsx(calls()), file_name="calls.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:", on_click="ignore", key="history_xlsx",
    )  # fmt: skip


def main() -> None:
    api = state.client()
    state.show_flash()
    st.title("History")
    try:
        personas = data.personas(api)
    except ApiError as exc:
        state.show_error(exc)
        return
    results(api, filter_widgets(personas))


main()
