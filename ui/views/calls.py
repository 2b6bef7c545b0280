"""Calls (home): live calls, today's KPIs and the "New call" form."""

from __future__ import annotations

import phonenumbers
import streamlit as st

from ui import data, metrics, state
from ui.api_client import ACTIVE_STATUSES, ApiClient, ApiError, FieldErrors, Persona

STATUS_ICONS = {"queued": "⏳", "ringing": "🔔", "in-progress": "🟢"}


def check_number(raw: str) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, why it is not valid); the server checks again."""
    raw = raw.strip()
    if not raw.startswith("+"):
        return None, "Use E.164 format: + then country code and number, e.g. +14155550100."
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        return None, f"Not a phone number: {exc}"
    if not phonenumbers.is_valid_number(number):
        return None, f"{raw} is not a valid phone number."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def kpi_row(api: ApiClient) -> None:
    k = api.call_stats(data.today())
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Calls today", k["calls"])
    rate = k["answered_rate"]
    rate_text = "—" if rate is None else f"{rate:.0%}"
    c2.metric("Answered", rate_text, help="Answered calls among those no longer queued or ringing.")
    c3.metric("Average duration", metrics.fmt_seconds(k["avg_duration"]))
    v2v = k["median_voice_to_voice_ms"]
    v2v_text = "—" if v2v is None else f"{v2v:.0f} ms"
    c4.metric("Median voice-to-voice", v2v_text, help="Agent turns' `voice_to_voice_ms`, today.")


def live_calls(api: ApiClient) -> None:
    page = api.calls({"status": list(ACTIVE_STATUSES)})
    st.subheader(f"Live calls ({page['count']})")
    if not page["results"]:
        st.caption("No call is queued, ringing or in progress.")
        return
    head = st.columns([2, 2, 2, 1, 2, 1])
    for col, title in zip(
        head, ["Status", "Number", "Persona", "Duration", "Stage", ""], strict=True
    ):
        col.caption(title)
    for call in page["results"]:
        row = st.columns([2, 2, 2, 1, 2, 1], vertical_alignment="center")
        row[0].write(f"{STATUS_ICONS.get(call['status'], '')} {call['status']}")
        row[1].write(call["to_number"] if call["direction"] == "outbound" else call["from_number"])
        row[2].write(call.get("persona_name") or call["persona"])
        row[3].write(metrics.fmt_seconds(metrics.call_seconds(call)))
        row[4].write(call.get("current_stage") or "—")
        with row[5]:
            st.page_link(
                state.LIVE_PAGE, label="Open", icon=":material/open_in_new:",
                query_params={"call": call["id"]},
            )  # fmt: skip


@st.fragment(run_every=5)
def overview() -> None:
    api = state.client()
    try:
        kpi_row(api)
        live_calls(api)
    except ApiError as exc:
        state.show_error(exc)


def new_call_form(api: ApiClient, personas: list[Persona]) -> None:
    st.subheader("New call")
    if not personas:
        st.info("No personas yet: load some with `manage.py load_personas`.")
        return
    by_slug = {p["slug"]: p for p in personas}
    slug = st.selectbox(
        "Persona", list(by_slug), key="new_call_persona",
        format_func=lambda s: f"{by_slug[s]['name']} ({by_slug[s]['agent_name']})",
    )  # fmt: skip
    persona = by_slug[slug]
    slots = {"persona": st.empty()}
    with st.form("new_call", border=True):
        to = st.text_input("Number to call", placeholder="+14155550100", key="new_call_to")
        slots["to"] = st.empty()
        values: dict[str, str] = {}
        for var in persona.get("variables") or []:
            name = var["name"]
            required = var.get("required", True)
            values[name] = st.text_input(
                f"{name}{' *' if required else ''}",
                placeholder=str(var.get("example") or ""),
                help=var.get("description") or None,
                key=f"new_call_var_{slug}_{name}",
            )
            slots[f"var:{name}"] = st.empty()
        slots["variables"] = st.empty()
        welcome = st.text_area(
            "Welcome message (optional)", key="new_call_welcome",
            help="Said first instead of the persona's greeting.",
        )  # fmt: skip
        slots["welcome_message"] = st.empty()
        general = st.empty()
        submitted = st.form_submit_button("Start call", type="primary", icon=":material/call:")
    if not submitted:
        return
    number, problem = check_number(to)
    missing = [
        v["name"] for v in persona.get("variables") or []
        if v.get("required", True) and not values.get(v["name"], "").strip()
    ]  # fmt: skip
    if problem:
        slots["to"].error(problem, icon=":material/error:")
    for name in missing:
        slots[f"var:{name}"].error(f"{name} is required.", icon=":material/error:")
    if problem or missing:
        return
    try:
        call = api.start_call(
            persona=slug, to=number or to, variables=values, welcome_message=welcome.strip()
        )
    except FieldErrors as exc:
        # A carrier refusal also names the call it stored as failed, and the carrier's code.
        failed_call, _ = exc.pop("call"), exc.pop("code")
        if exc.fields.keys() - {"detail"}:
            exc.pop("detail")  # repeats the field message
        rest = state.show_field_errors(exc.fields, slots)
        if rest:
            general.error("; ".join(rest), icon=":material/error:")
        if failed_call:
            st.page_link(
                state.LIVE_PAGE, label="The failed call", query_params={"call": failed_call[0]}
            )
        return
    except ApiError as exc:
        state.show_error(exc, where=general)
        return
    state.flash(f"Calling {call['to_number']} as {persona['agent_name']}.")
    state.open_call(call["id"])


def main() -> None:
    api = state.client()
    state.show_flash()
    st.title("Calls")
    overview()
    st.divider()
    try:
        personas = data.personas(api)
    except ApiError as exc:
        state.show_error(exc)
    else:
        new_call_form(api, personas)


main()
