"""Persona editing with inline Q&A and a rendered-prompt preview."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from agents import context
from agents.models import Persona, QAEntry
from agents.prompts import TemplateError


class QAEntryInline(admin.TabularInline):
    model = QAEntry
    extra = 1
    fields = ["order", "question", "answer"]


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["name", "agent_name", "slug", "engine", "language", "updated_at"]
    search_fields = ["name", "agent_name", "slug", "role", "company"]
    list_filter = ["engine", "language"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [QAEntryInline]
    readonly_fields = ["prompt_preview", "greeting_preview"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "agent_name", "role", "company", "language", "engine"]}),
        ("Conversation", {"fields": ["system_prompt", "first_message", "goodbye", "variables", "stages"]}),
        ("Preview (sample variables)", {"fields": ["prompt_preview", "greeting_preview"]}),
        ("Call handling", {"fields": [
            "tools", "transfer_number", "transfer_destinations", "max_duration_seconds", "silence_timeout_seconds",
            "machine_detection", "record_on_carrier",
        ]}),
        ("Data and providers", {"fields": ["extraction_schema", "voices", "provider_options"]}),
    ]  # fmt: skip

    @admin.display(description="System prompt")
    def prompt_preview(self, persona: Persona) -> str:
        return self._preview(persona, context.render_prompt)

    @admin.display(description="Greeting")
    def greeting_preview(self, persona: Persona) -> str:
        return self._preview(persona, context.render_greeting)

    @staticmethod
    def _preview(persona: Persona, render) -> str:
        if not persona.pk:
            return "Save to see the preview."
        try:
            text = render(persona, context.sample_variables(persona))
        except TemplateError as exc:
            text = f"Cannot render: {exc}"
        return format_html('<pre style="white-space: pre-wrap; max-width: 60em">{}</pre>', text)
