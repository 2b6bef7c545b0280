"""The persona playground: chat endpoint and terminal command, on the scripted dialogue engine."""

import io

import pytest
from django.core.management import call_command

LOCAL_LLM = {"BACKEND": "calls.providers.llm.scripted.ScriptedLLM", "OPTIONS": {}}


@pytest.fixture(autouse=True)
def scripted_llm(settings):
    settings.PROVIDERS = {**settings.PROVIDERS, "llm": LOCAL_LLM}


@pytest.mark.django_db
def test_chat_greets_then_answers_from_qa(api, myra):
    url = "/api/personas/myra-recruiting/chat/"
    first = api.post(url, {"messages": [], "variables": {"applicant_name": "Ann"}}, format="json")
    assert first.status_code == 200
    assert first.json()["reply"] == "Hi, this is Myra from Escade Networks. Am I speaking with Ann?"
    messages = [
        {"role": "assistant", "content": first.json()["reply"]},
        {"role": "user", "content": "Yes. What is the salary range?"},
    ]
    second = api.post(url, {"messages": messages}, format="json").json()
    assert "120 to 150 thousand" in second["reply"]


@pytest.mark.django_db
def test_chat_emits_tools(api, myra):
    messages = [{"role": "user", "content": "Goodbye!"}]
    reply = api.post("/api/personas/myra-recruiting/chat/", {"messages": messages}, format="json")
    calls = reply.json()["tool_calls"]  # the goodbye moves the call to the closing stage
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("set_stage", {"stage": "close"}),
        ("end_call", {}),
    ]


@pytest.mark.django_db
def test_chat_validation_and_auth(api, anon, myra):
    url = "/api/personas/myra-recruiting/chat/"
    bad = api.post(url, {"messages": [{"role": "system", "content": "x"}]}, format="json")
    assert bad.status_code == 400 and "messages" in bad.json()
    assert (
        api.post("/api/personas/nobody/chat/", {"messages": []}, format="json").status_code == 404
    )
    assert anon.post(url, {"messages": []}, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_terminal_playground(myra, monkeypatch):
    lines = iter(["Is the job remote?", "goodbye"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    out = io.StringIO()
    call_command("playground", "myra-recruiting", "--var", "applicant_name=Ann", stdout=out)
    text = out.getvalue()
    assert "Myra: Hi, this is Myra" in text and "hybrid" in text and "[tool] end_call" in text
