"""Personas: who the agent is on a call, and the answers it gives without asking the LLM."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from phonenumber_field.modelfields import PhoneNumberField

from agents import validation
from calls.pipeline.tools import persona_tools


class Engine(models.TextChoices):
    PIPELINE = "pipeline", "STT -> LLM -> TTS"
    REALTIME = "realtime", "Speech-to-speech (OpenAI Realtime)"


class Persona(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80, unique=True)
    agent_name = models.CharField(
        max_length=80, help_text="The name the agent introduces itself with."
    )
    role = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=120, blank=True)
    language = models.CharField(max_length=16, default="en-US")
    system_prompt = models.TextField(
        help_text="Template; placeholders like {agent_name}, {conversation_history} or a declared "
        "variable such as {applicant_name}.",
    )
    first_message = models.TextField(
        blank=True, help_text="Greeting (template). Empty: wait for the caller."
    )
    goodbye = models.TextField(blank=True, help_text="Said before the agent hangs up (template).")
    variables = models.JSONField(
        default=list,
        blank=True,
        help_text='Call variables the templates use: [{"name": "applicant_name", "example": "Ann", '
        '"description": "...", "required": true}]',
    )
    stages = models.JSONField(
        default=list, blank=True, help_text='Ordered: [{"name": "intro", "description": "..."}]'
    )
    tools = models.JSONField(
        default=list, blank=True, help_text=f"Subset of {list(persona_tools())}"
    )
    transfer_number = PhoneNumberField(
        blank=True, help_text="The default transfer destination (transfer_call with no name)."
    )
    transfer_destinations = models.JSONField(
        default=list,
        blank=True,
        help_text="Named numbers the agent may transfer to; the model sees only the names: "
        '[{"name": "sales", "number": "+14155550142", "description": "New orders"}]',
    )
    max_duration_seconds = models.PositiveIntegerField(default=600)
    silence_timeout_seconds = models.PositiveIntegerField(default=10)
    machine_detection = models.BooleanField(
        default=False, help_text="Ask the carrier to detect voicemail."
    )
    record_on_carrier = models.BooleanField(
        default=False, help_text="Also record on Twilio's side."
    )
    extraction_schema = models.JSONField(
        default=dict, blank=True, help_text="JSON Schema for post-call data."
    )
    voices = models.JSONField(
        default=dict,
        blank=True,
        help_text='Voice per TTS backend: {"elevenlabs": "...", "local": "..."}',
    )
    provider_options = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"stt_model": "nova-3", "llm_model": "gpt-4o-mini", "tts_model": "...", "temperature": 0.6}',
    )
    engine = models.CharField(max_length=16, choices=Engine.choices, default=Engine.PIPELINE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("chat_persona", "Can chat with a persona in the playground")]

    def __str__(self) -> str:
        return f"{self.name} ({self.agent_name})"

    def clean(self) -> None:
        errors = validation.persona_errors(self, tools=list(persona_tools()))
        if errors:
            raise ValidationError(errors)
        self.transfer_destinations = validation.normalized_destinations(self.transfer_destinations)

    @property
    def variable_names(self) -> list[str]:
        return [v["name"] for v in self.variables if isinstance(v, dict) and "name" in v]

    @property
    def required_variables(self) -> list[str]:
        return [
            v["name"] for v in self.variables if isinstance(v, dict) and v.get("required", True)
        ]


class QAEntry(models.Model):
    persona = models.ForeignKey(Persona, related_name="qa_entries", on_delete=models.CASCADE)
    question = models.CharField(max_length=300)
    answer = models.TextField()
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = "Q&A entry"
        verbose_name_plural = "Q&A entries"

    def __str__(self) -> str:
        return self.question
