"""Caps on placing calls: MAX_ACTIVE_CALLS and calls to one number in 24 hours (a 429 with
Retry-After, nothing stored, no carrier request)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from calls import services
from calls.models import Call

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}
pytestmark = pytest.mark.django_db


def existing(persona, to="+14155550100", *, age=timedelta(0), status="in-progress") -> Call:
    call = services.call_create(persona=persona, to=to, variables=MYRA_VARS)
    Call.objects.filter(pk=call.pk).update(created_at=timezone.now() - age, status=status)
    return call


def place(api, to="+14155550100"):
    body = {"persona": "myra-recruiting", "to": to, "variables": MYRA_VARS}
    return api.post("/api/calls/", body, format="json")


def test_max_active_calls(api, myra, twilio_fake, settings):
    settings.MAX_ACTIVE_CALLS = 2
    existing(myra, "+14155550101")
    existing(myra, "+14155550102", status="ringing")
    existing(myra, "+14155550103", status="completed")
    existing(myra, "+14155550104", age=timedelta(hours=5))  # its end never came: not counted
    refused = place(api)
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert "MAX_ACTIVE_CALLS" in refused.json()["detail"]
    assert Call.objects.count() == 4 and not twilio_fake.requests
    settings.MAX_ACTIVE_CALLS = 3
    assert place(api).status_code == 201


def test_calls_per_destination_per_day(api, myra, twilio_fake, settings):
    settings.MAX_CALLS_PER_DESTINATION_PER_DAY = 2
    existing(myra, age=timedelta(hours=23), status="completed")
    existing(myra, age=timedelta(hours=1), status="no-answer")
    existing(myra, age=timedelta(hours=25), status="completed")  # more than a day ago
    refused = place(api)
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3602  # the 23-hour-old call turns 24 in 1 h
    assert "MAX_CALLS_PER_DESTINATION_PER_DAY" in refused.json()["detail"]
    assert Call.objects.count() == 3 and not twilio_fake.requests
    assert place(api, "+14155550199").status_code == 201  # another number


def test_zero_is_no_cap(api, myra, twilio_fake, settings):
    settings.MAX_ACTIVE_CALLS = 0
    settings.MAX_CALLS_PER_DESTINATION_PER_DAY = 0
    for _ in range(3):
        existing(myra)
    assert place(api).status_code == 201
