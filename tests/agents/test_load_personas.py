"""The set-up's persona step (`make setup` runs `load_personas fixtures/personas.yaml`): it creates
missing personas and keeps edited ones; `--reapply` resets them and names what it changed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from agents.models import Persona

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = "fixtures/personas.yaml"
EDITED_GOODBYE = "Bye for now, {applicant_name}. Talk soon!"


def setup_command() -> list[str]:
    """The persona step of `make setup`, as the Makefile writes it."""
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"manage\.py (load_personas[^\n#]*)", makefile)
    assert line, "make setup no longer loads personas"
    return line.group(1).split()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_an_edit_made_through_the_api_survives_the_set_up(api):
    first = run(*setup_command())
    assert "persona myra-recruiting: created" in first
    patched = api.patch(
        "/api/personas/myra-recruiting/",
        {"goodbye": EDITED_GOODBYE, "qa_entries": [{"question": "Q?", "answer": "A."}]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()

    again = run(*setup_command())  # the next `make run`
    assert "created" not in again and "updated" not in again
    assert "kept as they are" in again and "myra-recruiting" in again and "--reapply" in again
    detail = api.get("/api/personas/myra-recruiting/").json()
    assert detail["goodbye"] == EDITED_GOODBYE
    assert detail["qa_entries"] == [{"question": "Q?", "answer": "A."}]


@pytest.mark.django_db
def test_a_missing_persona_is_created_and_the_others_kept(personas):
    Persona.objects.filter(slug="billing-advocate").delete()
    Persona.objects.filter(slug="myra-recruiting").update(agent_name="Mira")
    out = run(*setup_command())
    assert "persona billing-advocate: created" in out
    assert Persona.objects.get(slug="myra-recruiting").agent_name == "Mira"


@pytest.mark.django_db
def test_reapply_resets_edited_personas_and_says_which(personas):
    myra = Persona.objects.get(slug="myra-recruiting")
    original_goodbye = myra.goodbye
    myra.goodbye, myra.silence_timeout_seconds = EDITED_GOODBYE, 30
    myra.save()
    myra.qa_entries.all().delete()

    out = run("load_personas", FIXTURE, "--reapply")
    lines = out.splitlines()
    changed = [line for line in lines if "updated" in line]
    assert changed == [
        f"persona myra-recruiting: updated from {FIXTURE} "
        "(goodbye, silence_timeout_seconds, qa_entries)"
    ]
    assert "persona sarah-prior-auth: unchanged" in lines
    myra.refresh_from_db()
    assert myra.goodbye == original_goodbye and myra.qa_entries.count() == 3


@pytest.mark.django_db
def test_reapply_of_named_personas_only(personas):
    Persona.objects.filter(slug__in=["myra-recruiting", "sarah-prior-auth"]).update(
        agent_name="Edited"
    )
    out = run("load_personas", FIXTURE, "--reapply", "sarah-prior-auth")
    assert "persona sarah-prior-auth: updated" in out and "(agent_name)" in out
    assert Persona.objects.get(slug="sarah-prior-auth").agent_name == "Sarah"
    assert Persona.objects.get(slug="myra-recruiting").agent_name == "Edited"
    with pytest.raises(CommandError, match="no persona nobody"):
        run("load_personas", FIXTURE, "--reapply", "nobody")


@pytest.mark.django_db
def test_a_broken_file_changes_nothing(personas, tmp_path):
    broken = tmp_path / "personas.yaml"
    broken.write_text(
        "- {slug: new-one, name: New, agent_name: N, system_prompt: Hi.}\n- {slug: bad, name: ''}\n"
    )
    with pytest.raises(CommandError, match="persona 'bad'"):
        run("load_personas", str(broken))
    assert not Persona.objects.filter(slug="new-one").exists()  # one transaction: all or nothing
