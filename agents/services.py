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


def _state(persona: Persona, names: Iterable[str]) -> dict[str, object]:
    """The persona's values for `names` as compared (phone numbers as text), with its Q&A."""
    state = {n: getattr(persona, n) for n in names if n != "qa_entries"}
    state = {n: str(v) if n == "transfer_number" else v for n, v in state.items()}
    state["qa_entries"] = list(persona.qa_entries.values_list("question", "answer"))
    return state


@transaction.atomic
def persona_apply_fixture(
    *, qa_entries: Iterable[Mapping[str, object]] = (), overwrite: bool = False, **fields: object
) -> tuple[Persona, str, list[str]]:
    """Create the persona a fixture describes if its slug is new. An existing one is left as it
    is (it may have been edited since) unless `overwrite`, which sets it to the fixture.
    Returns (persona, "created" | "kept" | "updated" | "unchanged", the fields that changed)."""
    existing = Persona.objects.filter(slug=fields.get("slug")).first()
    if existing is None:
        return persona_create(qa_entries=qa_entries, **fields), "created", []
    if not overwrite:
        return existing, "kept", []
    qa_entries = list(qa_entries)
    before = _state(existing, fields)
    persona = persona_update(persona=existing, qa_entries=qa_entries, **fields)
    after = _state(persona, fields)
    changed = [name for name in after if before[name] != after[name]]
    return persona, "updated" if changed else "unchanged", changed
