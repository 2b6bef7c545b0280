"""Twilio webhook routes."""

from django.urls import path

from calls.telephony import webhooks

urlpatterns = [
    path("voice/", webhooks.voice, name="twilio-voice"),
    path("answer/", webhooks.answer, name="twilio-answer"),
    path("status/", webhooks.status, name="twilio-status"),
]
