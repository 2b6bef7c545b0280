"""Live call / review: the transcript as it grows, events, latency and controls; the outcome once ended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from ui import metrics, state
from ui.api_client import TERMINAL_STATUSES, ApiClient, ApiError, Call, FieldErrors, NotFound, Turn
from ui.transcript import EVENT_ICONS, Feed, describe_event, plain, timeline

SPEAKERS = {
    "agent": ("Agent", ":material/support_agent:"),
    "caller": ("Caller", ":material/person:"),
    "supervisor": ("Supervisor", ":material/supervisor_account:"),
    "system": ("System", ":material/info:"),
}
OUTCOME_WAIT_SECONDS = 120  # keep polling this long after the end for the summary/extraction


def selected_call_id() -> str | None:
    call_id = st.query_params.get("call") or st.session_state.get("call_id")
    if call_id:
        st.session_state["call_id"] = call_id
        st.query_params["call"] = call_id
    return call_id


def feed_for(call_id: str) -> Feed:
    key = f"feed:{call_id}"
    if not isinstance(st.session_state.get(key), Feed):
        st.session_state[key] = Feed(call_id=call_id)
    return st.session_state[key]


def poll_interval(call: Call) -> float | None:
    """Seconds between polls: every second while live, slower while the outcome is pending."""
    if call["status"] not in TERMINAL_STATUSES:
        return 1
    ended = metrics.parse_ts(call.get("ended_at"))
    recent = (
        ended is not None and (datetime.now(UTC) - ended).total_seconds() < OUTCOME_WAIT_SECONDS
    )
    return 3 if recent and not call.get("summary") else None


def render_turn(turn: Turn) -> None:
    label, avatar = SPEAKERS.get(turn["speaker"], (turn["speaker"].title(), None))
    with st.chat_message(turn["speaker"], avatar=avatar):
        when = metrics.fmt_ts(turn.get("ended_at") or turn.get("started_at"), "%H:%M:%S")
        v2v = metrics.voice_to_voice_ms(turn)
        extra = f" · {v2v:.0f} ms" if v2v is not None else ""
        st.caption(f"**{label}** · #{turn['seq']} · {when}{extra}")
        # The words as said, never markdown: a caller cannot make links or images appear here.
        if turn.get("interrupted"):
            if turn.get("heard_text"):
                st.text(turn["heard_text"])
            else:
                st.caption("_(interrupted before anything was heard)_")
            st.caption(f":material/content_cut: Interrupted. Full text: {plain(turn['text'])}")
        else:
            st.text(turn["text"])


def render_status(call: Call) -> None:
    # Wide enough for "in-progress" and stage names at 1400 px; a duration needs less.
    c1, c2, c3 = st.columns([5, 5, 3])
    c1.metric("Status", call["status"])
    c2.metric("Stage", call.get("current_stage") or "—")
    c3.metric("Duration", metrics.fmt_seconds(metrics.call_seconds(call)))


def render_feed(feed: Feed) -> None:
    items = timeline(feed)
    with st.container(height=520, autoscroll=True, border=True, key="live_transcript"):
        if not items:
            st.caption("Waiting for the first words…")
        for kind, item in items:
            if kind == "turn":
                render_turn(item)  # type: ignore[arg-type]
            else:
                icon = EVENT_ICONS.get(item["type"], ":material/circle:")
                st.caption(f"{icon} {describe_event(item)}")  # type: ignore[arg-type]
    rows = metrics.latency_rows(t for t in feed.turns if t["speaker"] == "agent")
    if rows:
        frame = pd.DataFrame(rows)
        columns = [c for c in frame.columns if c != "turn"]
        if metrics.V2V_KEY in columns:
            columns = [metrics.V2V_KEY]
        st.caption("Latency per agent turn (ms)")
        st.bar_chart(
            frame, x="turn", y=columns, stack=False, height=180, x_label="agent turn #",
            y_label="voice-to-voice (ms)" if columns == [metrics.V2V_KEY] else "ms",
        )  # fmt: skip
    with st.expander(f"All events ({len(feed.events)})"):
        st.dataframe(
            [{"id": e["id"], "type": e["type"], "at": metrics.fmt_ts(e.get("created_at")),
              "payload": describe_event(e)} for e in feed.events],
            hide_index=True,
        )  # fmt: skip


def feed_panel(call_id: str, interval: float | None, status: str) -> None:
    """Polls and draws status + timeline; a change of status or poll mode reruns the page, so
    the controls and outcome beside it (drawn by the page body) match what this shows."""
    feed = feed_for(call_id)
    try:
        call = feed.refresh(state.client())
    except ApiError as exc:
        state.show_error(exc)
        if feed.call is None:
            return
        call = feed.call
    if call["status"] != status or poll_interval(call) != interval:
        st.rerun()
    render_status(call)
    render_feed(feed)


def control_form(
    name: str,
    field: str,
    label: str,
    button: str,
    send: Callable[[str], int],
    *,
    placeholder: str = "",
) -> None:
    """One control (transfer / digits / say) with its errors under its field."""
    with st.form(f"control_{name}", clear_on_submit=True, border=False):
        value = st.text_input(label, placeholder=placeholder, key=f"control_{name}_{field}")
        slot = st.empty()
        submitted = st.form_submit_button(button)
    if not submitted:
        return
    try:
        status = send(value)
    except FieldErrors as exc:
        rest = state.show_field_errors(exc.fields, {field: slot, "status": slot})
        if rest:
            slot.error("; ".join(rest), icon=":material/error:")
    except ApiError as exc:
        state.show_error(exc, where=slot)
    else:
        slot.success(f"{button}: accepted ({status}).", icon=":material/check:")


def controls(api: ApiClient, call: Call) -> None:
    call_id = call["id"]
    st.subheader("Controls")
    if st.button("Hang up", type="primary", icon=":material/call_end:", key="control_hangup"):
        try:
            ended = api.hangup(call_id)
        except ApiError as exc:
            state.show_error(exc)
        else:
            state.flash(f"Hung up: the call is {ended['status']}.")
            st.rerun()
    if call["status"] != "in-progress":
        st.caption("Transfer, digits and say work once the call is in progress.")
    control_form(
        "transfer", "to", "Transfer to", "Transfer", lambda v: api.transfer(call_id, v),
        placeholder="+14155550123",
    )  # fmt: skip
    control_form(
        "digits", "digits", "Press digits", "Press", lambda v: api.press_digits(call_id, v),
        placeholder="1w2#",
    )  # fmt: skip
    control_form("say", "text", "Say", "Say", lambda v: api.say(call_id, v))


def outcome(api: ApiClient, call: Call) -> None:
    st.subheader("Outcome")
    # Two metrics fit this column; the duration is in the status row beside it.
    c1, c2 = st.columns(2)
    c1.metric("Outcome", call["status"], help=call.get("answered_by") or None)
    c2.metric("Ended", metrics.fmt_ts(call.get("ended_at"), "%H:%M:%S") or "—")
    st.write(f"**End reason:** {call.get('end_reason') or '—'}")
    if call.get("recording_url"):
        key = f"recording:{call['id']}"
        try:
            if key not in st.session_state:
                st.session_state[key] = api.recording(call["recording_url"])
            st.audio(st.session_state[key], format="audio/wav")
        except ApiError as exc:
            state.show_error(exc)
    else:
        st.caption("No recording.")
    st.write("**Summary**")
    if call.get("summary"):
        st.text(call["summary"])  # written from the caller's words: text, never markdown
    else:
        st.caption("No summary yet.")
    st.write("**Extracted data**")
    if call.get("extracted_data"):
        st.json(call["extracted_data"])
    else:
        st.caption("Nothing extracted.")


def pick_call(api: ApiClient) -> None:
    st.info("Choose a call to watch or review.")
    try:
        recent = api.calls()["results"]
    except ApiError as exc:
        state.show_error(exc)
        return
    if not recent:
        st.caption("No calls yet: start one from the Calls page.")
        return
    labels = {
        c["id"]: f"{metrics.fmt_ts(c['created_at'], '%m-%d %H:%M')} · {c['to_number']} · "
        f"{c['persona']} · {c['status']}"
        for c in recent
    }
    chosen = st.selectbox("Recent calls", list(labels), format_func=labels.get, key="live_pick")
    if st.button("Open", key="live_open"):
        state.open_call(chosen)


def main() -> None:
    api = state.client()
    state.show_flash()
    call_id = selected_call_id()
    if not call_id:
        st.title("Live call")
        pick_call(api)
        return
    try:
        call = feed_for(call_id).poll_for_page(api)
    except NotFound:
        st.title("Live call")
        st.error(f"No call {call_id} on this server.")
        st.session_state.pop("call_id", None)
        st.query_params.pop("call", None)
        pick_call(api)
        return
    except ApiError as exc:
        state.show_error(exc)
        return
    live = call["status"] not in TERMINAL_STATUSES
    number = call["to_number"] if call["direction"] == "outbound" else call["from_number"]
    st.title(f"{'Live call' if live else 'Call'} · {number}")
    st.caption(
        f"{call['direction']} · {call.get('persona_name') or call['persona']} · "
        f"started {metrics.fmt_ts(call['created_at'])} · id `{call['id']}`"
    )
    interval = poll_interval(call)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.fragment(run_every=interval)(feed_panel)(call_id, interval, call["status"])
    with right:
        if live:
            controls(api, call)
        else:
            outcome(api, call)
        with st.expander("Call variables"):
            st.json(call.get("variables") or {})


main()
