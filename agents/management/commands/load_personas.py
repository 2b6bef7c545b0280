"""Load (create or update, by slug) personas from a YAML file, validating each one."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents import services
from agents.models import Persona


class Command(BaseCommand):
    help = "Create or update personas from a YAML list (see fixtures/personas.yaml)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", default="fixtures/personas.yaml")

    @transaction.atomic
    def handle(self, *args, path: str, **options) -> None:
        try:
            items = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        if not isinstance(items, list):
            raise CommandError(f"{path}: expected a list of personas")
        for item in items:
            fields = dict(item)
            qa = fields.pop("qa_entries", [])
            try:
                existing = Persona.objects.filter(slug=fields.get("slug")).first()
                if existing:
                    services.persona_update(persona=existing, qa_entries=qa, **fields)
                else:
                    services.persona_create(qa_entries=qa, **fields)
            except (ValidationError, TypeError) as exc:
                raise CommandError(f"persona {fields.get('slug')!r}: {exc}") from None
            self.stdout.write(f"persona {fields['slug']}: {'updated' if existing else 'created'}")
