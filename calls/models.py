"""Calls, their turns (what was said) and events (everything else that happened)."""

from __future__ import annotations

import uuid

from django.db import models
from phonenumber_field.modelfields import PhoneNumberField

from calls.status import TERMINAL, CallStatus


class Direction(models.TextChoices):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Speaker(models.TextChoices):
    AGENT = "agent"
    CALLER = "caller"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"


class EventType(models.TextChoices):
    STATUS = "status"
    DTMF = "dtmf"
    TOOL_CALL = "tool_call"
    OVERRIDE = "override"
    ERROR = "error"
    LATENCY = "latency"
    STAGE = "stage"
    STREAM = "stream"
    CONTROL = "control"
    PROVIDER = "provider"


class Call(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    twilio_sid = models.CharField(max_length=64, blank=True, db_index=True)
    stream_sid = models.CharField(max_length=64, blank=True)
    # Nonce of the one stream token still valid for this call; emptied when a stream claims it.
    stream_nonce = models.CharField(max_length=64, blank=True, editable=False)
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.OUTBOUND
    )
    from_number = PhoneNumberField(blank=True)
    to_number = PhoneNumberField(db_index=True)
    persona = models.ForeignKey("agents.Persona", related_name="calls", on_delete=models.PROTECT)
    variables = models.JSONField(default=dict, blank=True)
    welcome_message = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=CallStatus.choices, default=CallStatus.QUEUED, db_index=True
    )
    answered_by = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds, from the carrier."
    )
    end_reason = models.CharField(max_length=200, blank=True)
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)
    extracted_data = models.JSONField(default=dict, blank=True)
    summary = models.TextField(blank=True)
    current_stage = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["persona", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["direction", "-created_at"]),
            models.Index(fields=["from_number"]),
        ]
        # Beyond view/add/change/delete; the roles that hold them are in calls/roles.py.
        permissions = [
            ("place_call", "Can place calls"),
            ("control_call", "Can control and supervise live calls"),
            ("download_recording", "Can download call recordings"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.to_number} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status not in TERMINAL


class Turn(models.Model):
    call = models.ForeignKey(Call, related_name="turns", on_delete=models.CASCADE)
    seq = models.PositiveIntegerField()
    speaker = models.CharField(max_length=10, choices=Speaker.choices)
    text = models.TextField()
    heard_text = models.TextField(
        blank=True, help_text="What the caller heard of an interrupted turn."
    )
    interrupted = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    latency = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["call", "seq"]
        constraints = [models.UniqueConstraint(fields=["call", "seq"], name="turn_unique_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.speaker}: {self.text[:40]}"


class CallEvent(models.Model):
    call = models.ForeignKey(Call, related_name="events", on_delete=models.CASCADE)
    type = models.CharField(max_length=16, choices=EventType.choices, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call", "id"]

    def __str__(self) -> str:
        return f"{self.type} {self.payload}"
