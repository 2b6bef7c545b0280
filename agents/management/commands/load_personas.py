"""Create the personas of a YAML file that do not exist yet; re-apply the file on request."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents import services


class Command(BaseCommand):
    help = (
        "Create the personas of a YAML list (fixtures/personas.yaml) that do not exist yet. "
        "Existing personas are left as they are, edits included, unless --reapply is given: "
        "then the file's version replaces them, and each persona it changes is named with the "
        "fields that changed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", default="fixtures/personas.yaml")
        parser.add_argument(
            "--reapply", nargs="*", metavar="SLUG", default=None,
            help="overwrite existing personas with the file's version: all of them, or only "
            "the slugs given (edits made through the API, console or admin are lost)",
        )  # fmt: skip

    @transaction.atomic
    def handle(self, *args, path: str, reapply: list[str] | None, **options) -> None:
        try:
            items = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise CommandError(f"{path}: expected a list of personas")
        slugs = [str(item.get("slug")) for item in items]
        unknown = sorted(set(reapply or ()) - set(slugs))
        if unknown:
            raise CommandError(f"--reapply: {path} has no persona {', '.join(unknown)}")
        kept = []
        for slug, item in zip(slugs, items, strict=True):
            fields = dict(item)
            qa = fields.pop("qa_entries", [])
            overwrite = reapply is not None and (not reapply or slug in reapply)
            try:
                _, action, changed = services.persona_apply_fixture(
                    qa_entries=qa, overwrite=overwrite, **fields
                )
            except (ValidationError, TypeError) as exc:
                raise CommandError(f"persona {slug!r}: {exc}") from None
            if action == "kept":
                kept.append(slug)
            elif action == "updated":
                self.stdout.write(f"persona {slug}: updated from {path} ({', '.join(changed)})")
            else:
                self.stdout.write(f"persona {slug}: {action}")
        if kept:
            self.stdout.write(
                f"personas kept as they are (edits included): {', '.join(kept)}; "
                f"`python manage.py load_personas --reapply [SLUG ...]` resets them to {path}"
            )
