"""Persona API shapes."""

from __future__ import annotations

from rest_framework import serializers

from agents import context
from agents.models import Persona, QAEntry
from agents.prompts import TemplateError


class QAEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = QAEntry
        fields = ["question", "answer"]


class PersonaSerializer(serializers.ModelSerializer):
    qa_entries = QAEntrySerializer(many=True, required=False)
    required_variables = serializers.ListField(child=serializers.CharField(), read_only=True)
    prompt_preview = serializers.SerializerMethodField()

    class Meta:
        model = Persona
        fields = [
            "id", "slug", "name", "agent_name", "role", "company", "language", "system_prompt",
            "first_message", "goodbye", "variables", "required_variables", "stages", "tools",
            "transfer_number", "transfer_destinations", "max_duration_seconds", "silence_timeout_seconds", "machine_detection",
            "record_on_carrier", "extraction_schema", "voices", "provider_options", "engine",
            "qa_entries", "prompt_preview", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_prompt_preview(self, persona: Persona) -> str:
        try:
            return context.render_prompt(persona, context.sample_variables(persona))
        except TemplateError as exc:
            return f"(cannot render: {exc})"
