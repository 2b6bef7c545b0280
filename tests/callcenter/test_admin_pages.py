"""Every page of the admin opens: each registered model's list, add page (where adding is allowed)
and the change page of one row, with data in every model, so no admin page breaks silently."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token

from calls import services
from calls.models import CallEvent, EventType


@pytest.fixture
def data(personas, django_user_model):
    """At least one row for every registered model: personas with Q&A, a call with turns and
    events of every type, a user with a token, a group, login attempts (django-axes)."""
    call = services.call_create(
        persona=personas["myra-recruiting"], to="+14155550100",
        variables={"applicant_name": "Jordan Lee", "position": "Network Engineer"},
    )  # fmt: skip
    services.call_set_status(call_id=call.pk, status="in-progress")
    services.turn_append(call_id=call.pk, speaker="agent", text="Hi, this is Myra.")
    services.turn_append(
        call_id=call.pk, speaker="caller", text="Yes.", latency={"voice_to_voice_ms": 600.0}
    )
    for kind in EventType.values:
        services.event_record(call_id=call.pk, type=kind, payload={"kind": kind})
    services.call_set_status(call_id=call.pk, status="completed", duration=12)
    user = django_user_model.objects.create_user("someone", password="pw-123456")
    Token.objects.create(user=user)
    Group.objects.create(name="supervisors").permissions.add(Permission.objects.first())
    seen = {"user_agent": "test", "ip_address": "127.0.0.1", "username": "someone",
            "http_accept": "*/*", "path_info": "/admin/login/"}  # fmt: skip
    AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=1)
    AccessFailureLog.objects.create(**seen)
    AccessLog.objects.create(**seen)
    return call


@pytest.fixture
def admin_client(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-123456")
    client.force_login(boss)
    return client


@pytest.mark.django_db
def test_every_admin_page_opens(admin_client, data):
    assert CallEvent.objects.filter(call=data).count() >= len(EventType.values)
    opened = []
    assert admin_client.get(reverse("admin:index")).status_code == 200
    for model, model_admin in admin.site._registry.items():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        listed = admin_client.get(reverse(f"{info}_changelist"))
        assert listed.status_code == 200, f"{model._meta.label} list: {listed.status_code}"
        row = model_admin.get_queryset(listed.wsgi_request).first()
        assert row is not None, f"no {model._meta.label} row to open"
        changed = admin_client.get(reverse(f"{info}_change", args=[row.pk]))
        assert changed.status_code == 200, f"{model._meta.label} {row.pk}: {changed.status_code}"
        if model_admin.has_add_permission(listed.wsgi_request):
            added = admin_client.get(reverse(f"{info}_add"))
            assert added.status_code == 200, f"{model._meta.label} add: {added.status_code}"
        opened.append(model._meta.label)
    assert {"calls.Call", "agents.Persona", "auth.User", "auth.Group"} <= set(opened)


@pytest.mark.django_db
def test_a_calls_page_shows_its_turns_and_events_read_only(admin_client, data):
    page = admin_client.get(reverse("admin:calls_call_change", args=[data.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Hi, this is Myra." in html and "voice_to_voice_ms" in html
    for kind in EventType.values:
        assert f"&quot;kind&quot;: &quot;{kind}&quot;" in html or f'"kind": "{kind}"' in html
    assert 'name="turns-0-text"' not in html and 'name="events-0-payload"' not in html
