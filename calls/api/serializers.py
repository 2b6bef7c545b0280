"""Call API shapes: output of calls, turns and events; input for starting and controlling calls."""

from __future__ import annotations

from rest_framework import serializers

from agents.models import Persona
from calls.models import Call, CallEvent, Turn


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = [
            "seq", "speaker", "text", "heard_text", "interrupted", "started_at", "ended_at", "latency",
        ]  # fmt: skip


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["id", "type", "payload", "created_at"]


class CallSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    persona = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    persona_name = serializers.CharField(source="persona.name", read_only=True)
    recording_url = serializers.SerializerMethodField()

    class Meta:
        model = Call
        fields = [
            "id", "twilio_sid", "direction", "from_number", "to_number", "persona", "persona_name",
            "variables", "welcome_message", "status", "answered_by", "created_at", "answered_at",
            "ended_at", "duration", "end_reason", "recording_url", "extracted_data", "summary",
            "current_stage",
        ]  # fmt: skip

    def get_recording_url(self, call: Call) -> str | None:
        if not call.recording:
            return None
        request = self.context.get("request")
        path = f"/api/calls/{call.uuid}/recording/"
        return request.build_absolute_uri(path) if request else path


class CallCreateSerializer(serializers.Serializer):
    persona = serializers.SlugRelatedField(slug_field="slug", queryset=Persona.objects.all())
    to = serializers.CharField(max_length=32)
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    welcome_message = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class TransferSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=32)


class DigitsSerializer(serializers.Serializer):
    digits = serializers.CharField(max_length=32)


class SaySerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1000)


class AfterSerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, required=False, default=0)


class CallStatsSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    decided = serializers.IntegerField(help_text="calls no longer queued or ringing")
    answered = serializers.IntegerField()
    answered_rate = serializers.FloatField(
        allow_null=True, help_text="answered / decided; null before any call is decided"
    )
    avg_duration = serializers.FloatField(allow_null=True)
    median_voice_to_voice_ms = serializers.FloatField(allow_null=True)
    turns_measured = serializers.IntegerField()
