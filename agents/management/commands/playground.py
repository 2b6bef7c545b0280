"""Chat with a persona in the terminal, through the configured LLM (no phone involved)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents import playground
from agents.models import Persona


class Command(BaseCommand):
    help = (
        "Text chat with a persona: `manage.py playground myra-recruiting --var applicant_name=Ann`"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("persona")
        parser.add_argument("--var", action="append", default=[], help="name=value, repeatable")

    def handle(self, *args, persona: str, var: list[str], **options) -> None:
        found = Persona.objects.filter(slug=persona).first()
        if found is None:
            raise CommandError(f"no persona {persona!r}")
        variables = dict(v.split("=", 1) for v in var if "=" in v)
        messages: list[dict] = []
        greeting = playground.persona_chat(persona=found, messages=[], variables=variables)
        self.stdout.write(f"{found.agent_name}: {greeting['reply']}")
        messages.append({"role": "assistant", "content": greeting["reply"]})
        while True:
            try:
                line = input("you: ").strip()
            except EOFError:
                return
            if not line:
                continue
            messages.append({"role": "user", "content": line})
            try:
                reply = playground.persona_chat(
                    persona=found, messages=messages, variables=variables
                )
            except ValidationError as exc:
                raise CommandError(str(exc)) from None
            for call in reply["tool_calls"]:
                self.stdout.write(f"  [tool] {call['name']} {call['arguments']}")
            self.stdout.write(f"{found.agent_name}: {reply['reply']}")
            messages.append({"role": "assistant", "content": reply["reply"]})
            if any(c["name"] == "end_call" for c in reply["tool_calls"]):
                return
