"""Recordings: readable by the server's user only, and deleted with their call."""

import os
import stat

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from calls import services
from calls.models import Call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recorded(myra, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call = services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"}
    )
    call.recording.save(f"call-{call.uuid}.wav", ContentFile(b"RIFF" + bytes(40)), save=True)
    return call


def test_a_recording_file_is_readable_by_its_owner_only(recorded):
    path = recorded.recording.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_deleting_a_call_in_the_admin_deletes_its_recording(recorded, admin_client):
    path = recorded.recording.path
    response = admin_client.post(f"/admin/calls/call/{recorded.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Call.objects.filter(pk=recorded.pk).exists() and not os.path.exists(path)


def test_a_delete_that_rolls_back_keeps_the_recording(recorded):
    path = recorded.recording.path
    with pytest.raises(RuntimeError), transaction.atomic():
        services.calls_delete(Call.objects.filter(pk=recorded.pk))
        raise RuntimeError("the surrounding work failed")
    assert Call.objects.filter(pk=recorded.pk).exists() and os.path.exists(path)
