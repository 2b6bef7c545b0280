"""Reads for personas."""

from __future__ import annotations

from django.db.models import QuerySet

from agents.models import Persona


def persona_list() -> QuerySet[Persona]:
    return Persona.objects.prefetch_related("qa_entries").order_by("name")


def persona_get(*, slug: str) -> Persona:
    return persona_list().get(slug=slug)
