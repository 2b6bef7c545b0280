"""The operator account of the set-up: its password is printed when created, kept afterwards, and
a new one is one command away (named in what every later run prints)."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.fixture(autouse=True)
def _own_var(settings, tmp_path, monkeypatch):
    settings.BASE_DIR = tmp_path  # var/operator_token goes here, not over the real one
    for name in ("OPERATOR_PASSWORD", "OPERATOR_TOKEN", "OPERATOR_USERNAME"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_operator", *args, stdout=out)
    return out.getvalue()


def password_in(out: str) -> str:
    found = re.search(r"operator login: operator / (\S+)", out)
    assert found, out
    return found.group(1)


@pytest.mark.django_db
def test_the_password_is_printed_once_and_a_new_one_on_request(settings):
    first = password_in(run())
    assert _password_is(first)

    later = run()  # every later `make run`
    assert "/ " not in later.split("operator API token")[0]  # no password: it was not changed
    command = re.search(r"a new one: `([^`]+)`", later).group(1)
    assert command == "python manage.py ensure_operator --new-password"
    assert _password_is(first)

    second = password_in(run(*command.split()[3:]))
    assert second != first
    assert _password_is(second)
    assert not _password_is(first)
    token = (settings.BASE_DIR / "var" / "operator_token").read_text()
    assert f"operator API token: {token}" in later


@pytest.mark.django_db
def test_a_chosen_password(monkeypatch):
    run()
    monkeypatch.setenv("OPERATOR_PASSWORD", "chosen-pass-123")
    assert password_in(run("--new-password")) == "chosen-pass-123"
    assert _password_is("chosen-pass-123")


def _password_is(password: str) -> bool:
    return get_user_model().objects.get(username="operator").check_password(password)
