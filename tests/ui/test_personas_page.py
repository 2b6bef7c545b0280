"""Personas (list, details, admin link) and the playground (chat endpoint absent or present)."""

from __future__ import annotations

import pytest

from agents.api.views import PersonaViewSet
from tests.ui.helpers import all_text

pytestmark = pytest.mark.console

PERSONAS = "views/personas.py"
PLAYGROUND = "views/playground.py"
SCRIPTED_LLM = {"BACKEND": "calls.providers.llm.scripted.ScriptedLLM", "OPTIONS": {}}


def test_personas_list_details_and_admin_link(console, personas, live_server):
    at = console(PERSONAS)
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["slug"]) == set(personas)

    at.selectbox(key="personas_selected").set_value("myra-recruiting").run()
    myra = personas["myra-recruiting"]
    preview = at.code[0].value
    assert "You are Myra" in preview and "Jordan Lee" in preview  # rendered with the examples
    assert at.link_button[0].proto.url == (
        f"{live_server.url}/admin/agents/persona/{myra.pk}/change/"
    )
    assert "applicant_name" in set(at.dataframe[1].value["name"])


def test_try_in_playground_on_a_server_without_the_chat_endpoint(console, settings):
    settings.ROOT_URLCONF = "tests.ui.urls_without_chat"
    at = console(PERSONAS)
    at.selectbox(key="personas_selected").set_value("sarah-prior-auth").run()
    at.button(key="persona_try").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Playground"
    assert at.selectbox(key="playground_select").value == "sarah-prior-auth"

    # AppTest reruns the page last given to switch_page(), not the one the app switched to.
    at.switch_page(PLAYGROUND)
    at.chat_input[0].set_value("Hi, who is this?").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="playground_select").value == "sarah-prior-auth"
    assert "not available on this server" in at.warning[0].value
    assert "/api/personas/sarah-prior-auth/chat/" in at.warning[0].value
    assert not at.chat_message  # the unanswered message is not kept


def test_playground_chat_round_trip(console, settings):
    if not hasattr(PersonaViewSet, "chat"):
        pytest.skip("this server has no POST /api/personas/{slug}/chat/ yet")
    settings.PROVIDERS = {**settings.PROVIDERS, "llm": SCRIPTED_LLM}
    at = console(PLAYGROUND)
    at.selectbox(key="playground_select").set_value("myra-recruiting").run()
    at.text_input(key="playground_var_myra-recruiting_applicant_name").set_value("Ann")
    at.button(key="playground_start").click().run()
    assert not at.exception, at.exception
    assert "Am I speaking with Ann?" in all_text(at)

    at.chat_input[0].set_value("Goodbye!").run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["assistant", "user", "assistant"]
    assert "`end_call(" in all_text(at)
    assert not at.warning
