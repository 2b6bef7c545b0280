"""Playground: chat with a persona in text before putting it on the phone."""

from __future__ import annotations

import json

import streamlit as st

from ui import data, state
from ui.api_client import ApiClient, ApiError, NotFound, Persona
from ui.transcript import code


def unavailable(slug: str) -> None:
    st.warning(
        "The playground is not available on this server: it needs "
        f"`POST /api/personas/{slug}/chat/` (the dialogue engine's text endpoint).",
        icon=":material/construction:",
    )


def variable_inputs(persona: Persona) -> dict[str, str]:
    values: dict[str, str] = {}
    with st.expander("Call variables", expanded=False):
        for var in persona.get("variables") or []:
            name = var["name"]
            values[name] = st.text_input(
                name, value=str(var.get("example") or ""), help=var.get("description") or None,
                key=f"playground_var_{persona['slug']}_{name}",
            )  # fmt: skip
    return values


def render_history(history: list[dict]) -> None:
    for message in history:
        role = "assistant" if message["role"] == "assistant" else "user"
        with st.chat_message(role):
            if message["content"]:
                st.text(message["content"])  # the model's words, never markdown
            else:
                st.caption("_(no words)_")
            for call in message.get("tool_calls") or []:
                name = call.get("name") or call.get("tool") or "tool"
                args = call.get("arguments", call.get("args", {}))
                st.caption(
                    f":material/build: {code(f'{name}({json.dumps(args, ensure_ascii=False)})')}"
                )


def ask(api: ApiClient, slug: str, history: list[dict], variables: dict[str, str]) -> None:
    """Send the conversation so far; append the reply, or show why there is none."""
    messages = [{"role": m["role"], "content": m["content"]} for m in history]
    try:
        reply = api.chat(slug, messages, variables)
    except ApiError as exc:
        # Unanswered: drop the message so the conversation still alternates.
        if history and history[-1]["role"] == "user":
            history.pop()
        if isinstance(exc, NotFound):
            st.session_state["playground_unavailable"] = True
        else:
            state.show_error(exc)
        return
    st.session_state["playground_unavailable"] = False
    history.append(
        {
            "role": "assistant",
            "content": reply.get("reply", ""),
            "tool_calls": reply.get("tool_calls") or [],
        }
    )


def main() -> None:
    api = state.client()
    st.title("Playground")
    try:
        personas = data.personas(api)
    except ApiError as exc:
        state.show_error(exc)
        return
    if not personas:
        st.info("No personas to talk to.")
        return
    by_slug = {p["slug"]: p for p in personas}
    slugs = list(by_slug)
    wanted = st.session_state.get("playground_persona")
    slug = st.selectbox(
        "Persona", slugs, index=slugs.index(wanted) if wanted in by_slug else 0,
        format_func=lambda s: f"{by_slug[s]['name']} ({by_slug[s]['agent_name']})",
        key="playground_select",
    )  # fmt: skip
    st.session_state["playground_persona"] = slug
    persona = by_slug[slug]
    variables = variable_inputs(persona)
    history: list[dict] = st.session_state.setdefault(f"playground:{slug}", [])
    c1, c2, _ = st.columns([1, 1, 3])
    if c1.button("Agent speaks first", disabled=bool(history), key="playground_start"):
        ask(api, slug, history, variables)
    if c2.button("Reset", key="playground_reset"):
        history.clear()
    prompt = st.chat_input(f"Talk to {persona['agent_name']} as the caller")
    if prompt:
        history.append({"role": "user", "content": prompt})
        ask(api, slug, history, variables)
    if st.session_state.get("playground_unavailable"):
        unavailable(slug)
    render_history(history)


main()
