"""The persona snapshot: a plain copy of a persona, so providers and the pipeline never touch the ORM."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class QA:
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class TransferDestination:
    """A named number the agent may transfer a caller to (the model only ever sees the name)."""

    name: str
    number: str  # E.164
    description: str = ""


@dataclass(frozen=True, slots=True)
class PersonaSpec:
    """A plain snapshot of a persona, so providers and the pipeline never touch the ORM."""

    name: str
    agent_name: str
    greeting: str = ""
    goodbye: str = ""
    language: str = "en-US"
    stages: tuple[Stage, ...] = ()
    qa: tuple[QA, ...] = ()
    tools: tuple[str, ...] = ()
    transfer_number: str = ""  # the default transfer destination
    transfer_destinations: tuple[TransferDestination, ...] = ()
    variables: dict = field(default_factory=dict)
