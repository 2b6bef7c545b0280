"""Roles as Django groups (viewer < operator < admin), enforced by the API, the admin and the
schema and docs: who may see, place, control, download and edit."""

import io
import itertools
import logging
import os

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calls import services
from calls.models import Call
from calls.roles import ROLES, grant

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}
LOCAL_LLM = {"BACKEND": "calls.providers.llm.scripted.ScriptedLLM", "OPTIONS": {}}
numbering = itertools.count(1)


def user_with(django_user_model, role: str | None, *, staff: bool = False):
    user = django_user_model.objects.create_user(
        f"{role}-{next(numbering)}", password="pw-123456", is_staff=staff
    )
    if role:
        grant(user, role)
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def as_viewer(db, django_user_model):
    return client_for(user_with(django_user_model, "viewer"))


@pytest.fixture
def as_operator(db, django_user_model):
    return client_for(user_with(django_user_model, "operator"))


@pytest.fixture
def as_admin(db, django_user_model):
    return client_for(user_with(django_user_model, "admin"))


@pytest.fixture
def live(myra):
    call = services.call_create(persona=myra, to="+14155550100", variables=MYRA_VARS)
    services.call_set_status(call_id=call.pk, status="in-progress")
    return call


@pytest.mark.django_db
def test_the_migration_creates_the_three_roles_each_above_the_last():
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLES)}
    held = {
        name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
        for name, g in groups.items()
    }
    assert held["viewer"] < held["operator"] < held["admin"]
    assert "calls.place_call" not in held["viewer"]
    assert {"calls.place_call", "calls.control_call"} <= held["operator"]
    assert "agents.change_persona" not in held["operator"]
    assert "calls.download_recording" not in held["operator"]
    assert {"agents.change_persona", "calls.download_recording"} <= held["admin"]


def test_a_viewer_sees_calls_transcripts_events_and_personas(as_viewer, live):
    for url in [
        "/api/calls/", f"/api/calls/{live.uuid}/", f"/api/calls/{live.uuid}/turns/",
        f"/api/calls/{live.uuid}/events/", "/api/calls/stats/", "/api/personas/",
        "/api/personas/myra-recruiting/",
    ]:  # fmt: skip
        assert as_viewer.get(url).status_code == 200, url


def test_a_viewer_cannot_place_a_call(as_viewer, myra, twilio_fake):
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    assert as_viewer.post("/api/calls/", body, format="json").status_code == 403
    assert not Call.objects.exists() and not twilio_fake.requests


@pytest.mark.parametrize(
    ("action", "body"),
    [("hangup", {}), ("transfer", {"to": "+14155550142"}), ("digits", {"digits": "1"}),
     ("say", {"text": "hello"})],
)  # fmt: skip
def test_a_viewer_cannot_control_a_call(as_viewer, live, twilio_fake, action, body):
    response = as_viewer.post(f"/api/calls/{live.uuid}/{action}/", body, format="json")
    assert response.status_code == 403
    assert Call.objects.get(pk=live.pk).status == "in-progress"
    assert not live.events.filter(type="control").exists() and not twilio_fake.requests


def test_recordings_need_their_own_permission(as_viewer, as_operator, as_admin, live):
    url = f"/api/calls/{live.uuid}/recording/"
    assert as_viewer.get(url).status_code == 403
    assert as_operator.get(url).status_code == 403
    assert as_admin.get(url).status_code == 404  # allowed; this call has no recording


def test_an_operator_places_and_controls_calls(as_operator, myra, live, twilio_fake):
    body = {"persona": "myra-recruiting", "to": "+14155550100", "variables": MYRA_VARS}
    assert as_operator.post("/api/calls/", body, format="json").status_code == 201
    assert as_operator.post(f"/api/calls/{live.uuid}/hangup/").status_code == 202


def test_an_operator_cannot_edit_personas(as_operator, myra):
    url = "/api/personas/myra-recruiting/"
    assert as_operator.patch(url, {"agent_name": "Eve"}, format="json").status_code == 403
    assert as_operator.put(url, {"agent_name": "Eve"}, format="json").status_code == 403
    assert as_operator.delete(url).status_code == 403
    assert as_operator.post("/api/personas/", {"name": "x"}, format="json").status_code == 403
    myra.refresh_from_db()
    assert myra.agent_name == "Myra"


def test_an_admin_edits_personas(as_admin, myra):
    url = "/api/personas/myra-recruiting/"
    response = as_admin.patch(url, {"agent_name": "Eve"}, format="json")
    assert response.status_code == 200, response.json()
    myra.refresh_from_db()
    assert myra.agent_name == "Eve"


def test_the_playground_needs_an_operator(as_viewer, as_operator, myra, settings):
    settings.PROVIDERS = {**settings.PROVIDERS, "llm": LOCAL_LLM}
    url = "/api/personas/myra-recruiting/chat/"
    body = {"messages": [], "variables": {"applicant_name": "Ann"}}
    assert as_viewer.post(url, body, format="json").status_code == 403
    assert as_operator.post(url, body, format="json").status_code == 200


def test_a_user_without_a_role_sees_nothing(db, django_user_model, myra):
    nobody = client_for(user_with(django_user_model, None))
    assert nobody.get("/api/calls/").status_code == 403
    assert nobody.get("/api/personas/").status_code == 403


def test_the_schema_and_docs_require_a_login(db, anon, client, as_viewer, django_user_model):
    assert anon.get("/api/schema/").status_code == 401
    assert as_viewer.get("/api/schema/").status_code == 200
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(user_with(django_user_model, "viewer"))
    assert client.get("/api/docs/").status_code == 200


def test_the_admin_lets_an_operator_see_but_not_edit_a_persona(db, client, django_user_model, myra):
    client.force_login(user_with(django_user_model, "operator", staff=True))
    url = f"/admin/agents/persona/{myra.pk}/change/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"agent_name": "Eve"}).status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403
    myra.refresh_from_db()
    assert myra.agent_name == "Myra"


def test_the_admin_lets_only_an_admin_delete_a_call(db, client, django_user_model, live):
    client.force_login(user_with(django_user_model, "viewer", staff=True))
    url = f"/admin/calls/call/{live.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403
    client.force_login(user_with(django_user_model, "admin", staff=True))
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Call.objects.filter(pk=live.pk).exists()


def test_grant_recreates_the_groups_and_refuses_an_unknown_role(db, django_user_model):
    Group.objects.filter(name__in=ROLES).delete()
    user = user_with(django_user_model, "operator")
    assert user.has_perm("calls.place_call") and not user.has_perm("agents.change_persona")
    with pytest.raises(ValueError, match="no role 'root'"):
        grant(user, "root")


def test_grant_role_command(db, django_user_model):
    user = django_user_model.objects.create_user("ann", password="pw-123456")
    out = io.StringIO()
    call_command("grant_role", "ann", "operator", "--staff", stdout=out)
    user = django_user_model.objects.get(pk=user.pk)
    assert out.getvalue().strip() == "ann: operator (staff)"
    assert user.is_staff and user.has_perm("calls.control_call")
    with pytest.raises(CommandError, match="no user 'bob'"):
        call_command("grant_role", "bob", "viewer")


def test_an_admin_cannot_make_anyone_a_superuser(db, client, django_user_model):
    boss = user_with(django_user_model, "admin", staff=True)
    client.force_login(boss)
    url = f"/admin/auth/user/{boss.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and 'name="is_superuser"' not in page.content.decode()
    form = {"username": boss.username, "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}  # fmt: skip
    client.post(url, form)
    boss.refresh_from_db()
    assert not boss.is_superuser


def test_deleting_a_call_through_the_api_deletes_its_recording_and_needs_the_admin_role(
    as_operator, as_admin, live, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    live.recording.save(f"call-{live.uuid}.wav", ContentFile(b"RIFF" + bytes(40)), save=True)
    path = live.recording.path
    url = f"/api/calls/{live.uuid}/"
    assert as_operator.delete(url).status_code == 403
    with caplog.at_level(logging.INFO, logger="calls.api.views"):
        assert as_admin.get(f"{url}recording/").status_code == 200
        with django_capture_on_commit_callbacks(execute=True):  # the file goes after the commit
            assert as_admin.delete(url).status_code == 204
    assert not Call.objects.filter(pk=live.pk).exists() and not os.path.exists(path)
    admin_name = Token.objects.get(key=as_admin._credentials["HTTP_AUTHORIZATION"][6:]).user
    assert f"recording of call {live.uuid} downloaded by {admin_name}" in caplog.text
    assert f"call {live.uuid} deleted by {admin_name}" in caplog.text
