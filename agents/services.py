"""Writes for personas: every change is validated whole and saved in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import transaction

from agents.models import Persona, QAEntry


def _save_qa(persona: Persona, qa_entries: Iterable[Mapping[str, object]]) -> None:
    persona.qa_entries.all().delete()
    entries = [
        QAEntry(persona=persona, question=e["question"], answer=e["answer"], order=i)
        for i, e in enumerate(qa_entries)
    ]
    for entry in entries:
        entry.full_clean(exclude=["persona"])
    QAEntry.objects.bulk_create(entries)


@transaction.atomic
def persona_create(*, qa_entries: Iterable[Mapping[str, object]] = (), **fields: object) -> Persona:
    persona = Persona(**fields)
    persona.full_clean()
    persona.save()
    _save_qa(persona, qa_entries)
    return persona


@transaction.atomic
def persona_update(
    *, persona: Persona, qa_entries: Iterable[Mapping[str, object]] | None = None, **fields: object
) -> Persona:
    for name, value in fields.items():
        setattr(persona, name, value)
    persona.full_clean()
    persona.save()
    if qa_entries is not None:
        _save_qa(persona, qa_entries)
    return persona


@transaction.atomic
def persona_delete(*, persona: Persona) -> None:
    persona.delete()
