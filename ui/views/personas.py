"""Personas: the list, one persona's details with its rendered prompt, and a link to edit it."""

from __future__ import annotations

import streamlit as st

from ui import data, state
from ui.api_client import ApiClient, ApiError, Persona


def persona_table(personas: list[Persona]) -> None:
    st.dataframe(
        [
            {
                "name": p["name"], "slug": p["slug"], "agent": p["agent_name"],
                "company": p.get("company", ""), "language": p.get("language", ""),
                "engine": p.get("engine", ""), "variables": len(p.get("variables") or []),
                "stages": len(p.get("stages") or []), "tools": ", ".join(p.get("tools") or []),
            }
            for p in personas
        ],
        hide_index=True,
    )  # fmt: skip


def details(api: ApiClient, persona: Persona) -> None:
    st.subheader(f"{persona['name']} · {persona['agent_name']}")
    st.caption(
        " · ".join(
            x for x in (persona.get("role"), persona.get("company"), persona.get("language")) if x
        )
    )
    c1, c2 = st.columns(2)
    c1.link_button("Edit in admin", api.admin_url(persona["id"]), icon=":material/edit:")
    if c2.button("Try in playground", icon=":material/forum:", key="persona_try"):
        st.session_state["playground_persona"] = persona["slug"]
        st.switch_page(state.PLAYGROUND_PAGE)
    tabs = st.tabs(["Prompt preview", "Greeting", "Variables", "Stages", "Q&A", "Settings"])
    with tabs[0]:
        st.caption("The system prompt rendered with each variable's example value.")
        st.code(persona.get("prompt_preview") or "", language=None, wrap_lines=True)
    with tabs[1]:
        st.write("**First message**")
        st.markdown(persona.get("first_message") or "_(waits for the caller)_")
        st.write("**Goodbye**")
        st.markdown(persona.get("goodbye") or "_(none)_")
    with tabs[2]:
        if persona.get("variables"):
            st.dataframe(persona["variables"], hide_index=True)
        else:
            st.caption("No call variables.")
    with tabs[3]:
        for stage in persona.get("stages") or []:
            st.markdown(f"- **{stage.get('name')}**: {stage.get('description', '')}")
    with tabs[4]:
        for qa in persona.get("qa_entries") or []:
            with st.expander(qa["question"]):
                st.markdown(qa["answer"])
        if not persona.get("qa_entries"):
            st.caption("No Q&A entries.")
    with tabs[5]:
        st.json(
            {
                k: persona.get(k)
                for k in (
                    "engine", "tools", "transfer_number", "transfer_destinations",
                    "max_duration_seconds",
                    "silence_timeout_seconds", "machine_detection", "record_on_carrier",
                    "voices", "provider_options", "extraction_schema",
                )
            }
        )  # fmt: skip


def main() -> None:
    api = state.client()
    state.show_flash()
    st.title("Personas")
    if st.button("Reload", icon=":material/refresh:", key="personas_reload"):
        data.forget_personas()  # edits made in the admin show at once
    try:
        personas = data.personas(api)
    except ApiError as exc:
        state.show_error(exc)
        return
    if not personas:
        st.info(
            "No personas: load them with `python manage.py load_personas fixtures/personas.yaml`."
        )
        return
    persona_table(personas)
    by_slug = {p["slug"]: p for p in personas}
    slug = st.selectbox(
        "Persona", list(by_slug), key="personas_selected",
        format_func=lambda s: f"{by_slug[s]['name']} ({s})",
    )  # fmt: skip
    details(api, by_slug[slug])


main()
