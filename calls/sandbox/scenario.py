"""Callee scenarios: what the simulated person on the line does, loaded from YAML.

A scenario file (fixtures/scenarios/<name>.yaml) is a mapping:

    description: one line
    number: "+14155550100"   # the dialled number that plays it (optional, unique)
    answer: answer           # answer | busy | no-answer | failed
    ring: 0.5                # seconds of ringing before that outcome
    answered_by: human       # AnsweredBy, sent when the call asked for machine detection
    voice: hibari-low        # local TTS voice of the callee's lines; "synthetic" = speech-like noise
    transfer_talk: 1.0       # after a <Dial>, seconds the dialled party talks before hanging up
    linger: 30               # after the last step, seconds of silence before the callee hangs up
    steps: [...]             # run in order from the first media stream on (see below)
    persona: slug | {...}    # instead of steps: the callee is another persona (agent-to-agent)

A step is a bare name (`hangup`) or a one-key mapping whose value is the step's first field or a
mapping of its fields (`say: "Hello."` is `say: {text: "Hello."}`):

    wait_agent: {gap: 0.7, timeout: 20}    until the agent has spoken and then paused `gap` s
    say: {text}                            speak a line; done when its audio has been sent
    barge_in: {text, after: 0.8}           once the agent is talking, talk over it after `after` s
    backchannel: {text: "Uh-huh.", after}  the same, short; the agent is expected to keep talking
    wait: {seconds, jitter: 0}             pause; plus a random 0..jitter s (callees that act
                                           alike drift apart, as real callers do)
    silent: {seconds}                      say nothing (no value: until the call ends)
    dtmf: {digits, gap: 0.25}              press keys (dtmf events on the stream)
    expect: {said, timeout: 10}            what the agent said since the callee last spoke (or
                                           the last `expect`) contains these words (local STT;
                                           recorded in the report, never fatal)
    menu: {prompt, options: {"1": [steps]}, timeout: 10, repeat: 1, otherwise: [steps]}
                                           an IVR: read the prompt, wait for digits the agent
                                           plays (<Play digits>), run the matching option
    wait_hangup: {seconds: 15}             wait for the agent to end the call, else hang up
    hangup                                 hang up

`persona` is either a persona the server has, by slug (`persona: sarah-prior-auth`, or a mapping
with `slug` and optionally `to`), or a persona described here (the fields of
`calls.core.persona.PersonaSpec`: name, agent_name, greeting, goodbye, stages [{name,
description}], qa [{question, answer}], tools, variables). A slug is answered by the server itself,
as an inbound call the carrier places and bridges to this one (bridge.py: two calls in the API,
both supervisable); `to` is the number that inbound call dials (the server picks its persona by
it, INBOUND_PERSONAS), by default a number the carrier finds mapped to the slug. A described
persona is run by the carrier as a second pipeline (persona_callee.py); with both, it is the
fallback when no number reaches the slug.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"
OUTCOMES = ("answer", "busy", "no-answer", "failed")
DEFAULT_VOICE = "hibari-low"


class ScenarioError(ValueError):
    """A scenario file that does not follow the schema; the message names the file and step."""


@dataclass(frozen=True)
class WaitAgent:
    gap: float = 0.7
    timeout: float = 20.0


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class BargeIn:
    text: str
    after: float = 0.8
    timeout: float = 20.0


@dataclass(frozen=True)
class Backchannel:
    text: str = "Uh-huh."
    after: float = 1.0
    timeout: float = 20.0


@dataclass(frozen=True)
class Wait:
    seconds: float
    jitter: float = 0.0


@dataclass(frozen=True)
class Silent:
    seconds: float | None = None


@dataclass(frozen=True)
class Dtmf:
    digits: str
    gap: float = 0.25


@dataclass(frozen=True)
class Expect:
    said: str
    timeout: float = 10.0


@dataclass(frozen=True)
class Menu:
    prompt: str
    options: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    timeout: float = 10.0
    repeat: int = 1
    otherwise: tuple[Step, ...] = ()


@dataclass(frozen=True)
class WaitHangup:
    seconds: float = 15.0


@dataclass(frozen=True)
class Hangup:
    pass


Step = (
    WaitAgent
    | Say
    | BargeIn
    | Backchannel
    | Wait
    | Silent
    | Dtmf
    | Expect
    | Menu
    | WaitHangup
    | Hangup
)

STEPS: dict[str, type] = {
    "wait_agent": WaitAgent,
    "say": Say,
    "barge_in": BargeIn,
    "backchannel": Backchannel,
    "wait": Wait,
    "silent": Silent,
    "dtmf": Dtmf,
    "expect": Expect,
    "menu": Menu,
    "wait_hangup": WaitHangup,
    "hangup": Hangup,
}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    number: str = ""
    answer: str = "answer"
    ring: float = 0.5
    answered_by: str = "human"
    voice: str = DEFAULT_VOICE
    transfer_talk: float = 1.0
    linger: float = 30.0
    steps: tuple[Step, ...] = ()
    persona: dict | None = None

    def lines(self) -> list[str]:
        """Every line the callee may say, in script order (to synthesise ahead)."""
        return list(_lines(self.steps))


def _lines(steps: Iterable[Step]) -> Iterable[str]:
    for step in steps:
        if isinstance(step, Say | BargeIn | Backchannel):
            yield step.text
        elif isinstance(step, Menu):
            yield step.prompt
            for option in step.options.values():
                yield from _lines(option)
            yield from _lines(step.otherwise)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    if kind in ("float", "float | None"):
        if value is None and kind.endswith("None"):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ScenarioError(f"{where}: expected text, got {value!r}")
        return str(value)
    return value


def parse_steps(raw: Any, where: str) -> tuple[Step, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: steps must be a list")
    return tuple(parse_step(item, f"{where}[{i}]") for i, item in enumerate(raw))


def parse_step(raw: Any, where: str) -> Step:
    if isinstance(raw, str):
        kind, value = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        [(kind, value)] = raw.items()
    else:
        raise ScenarioError(f"{where}: a step is a name or a one-key mapping, got {raw!r}")
    cls = STEPS.get(kind)
    if cls is None:
        raise ScenarioError(f"{where}: unknown step {kind!r}; use one of {', '.join(STEPS)}")
    where = f"{where} {kind}"
    fields = dataclasses.fields(cls)
    if value is None:
        args: dict[str, Any] = {}
    elif isinstance(value, dict):
        args = dict(value)
    elif fields:
        args = {fields[0].name: value}
    else:
        raise ScenarioError(f"{where}: takes no value")
    known = {f.name: f for f in fields}
    unknown = set(args) - set(known)
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    clean: dict[str, Any] = {}
    for name, value in args.items():
        kind_name = known[name].type
        if name == "options":
            if not isinstance(value, dict) or not value:
                raise ScenarioError(f"{where}: options maps digits to steps")
            clean[name] = {
                str(digit): parse_steps(steps, f"{where}.options[{digit}]")
                for digit, steps in value.items()
            }
        elif name == "otherwise":
            clean[name] = parse_steps(value, f"{where}.otherwise")
        else:
            clean[name] = _coerce(value, kind_name, f"{where}.{name}")
    try:
        return cls(**clean)
    except TypeError as exc:  # a required field is missing
        raise ScenarioError(f"{where}: {exc}") from None


def parse(data: Any, name: str) -> Scenario:
    """A scenario from its YAML mapping; `name` is the file's stem unless the file says otherwise."""
    where = f"scenario {name!r}"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: the file must hold a mapping")
    known = {f.name for f in dataclasses.fields(Scenario)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    answer = str(data.get("answer", "answer"))
    if answer not in OUTCOMES:
        raise ScenarioError(f"{where}: answer must be one of {', '.join(OUTCOMES)}")
    persona = _persona(data.get("persona"), where)
    return Scenario(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        number=str(data.get("number", "")),
        answer=answer,
        ring=_coerce(data.get("ring", 0.5), "float", f"{where}.ring"),
        answered_by=str(data.get("answered_by", "human")),
        voice=str(data.get("voice", DEFAULT_VOICE)),
        transfer_talk=_coerce(data.get("transfer_talk", 1.0), "float", f"{where}.transfer_talk"),
        linger=_coerce(data.get("linger", 30.0), "float", f"{where}.linger"),
        steps=parse_steps(data.get("steps"), f"{where} steps"),
        persona=persona,
    )


def _persona(raw: Any, where: str) -> dict | None:
    """A persona slug (str) becomes {"slug": ...}; a mapping needs a slug or an agent_name."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip():
        return {"slug": raw.strip()}
    if not isinstance(raw, dict) or not (raw.get("agent_name") or raw.get("slug")):
        raise ScenarioError(
            f"{where}: persona must be a mapping with at least agent_name, or a persona slug "
            "(a text, or a mapping with `slug`)"
        )
    for key in ("slug", "to"):
        if key in raw and not isinstance(raw[key], str):
            raise ScenarioError(f"{where}: persona.{key} must be text, got {raw[key]!r}")
    return dict(raw)


def load(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse(data, path.stem)


class ScenarioBook:
    """Scenarios by name and by dialled number, from one or more folders (later folders win).

    `plan(to, name_or_scenario)` makes the next call to `to` play that scenario (queued, once);
    otherwise a call plays the scenario whose `number` it dialled, else `default`.
    """

    def __init__(self, dirs: Iterable[Path] = (SCENARIO_DIR,), *, default: str = "cooperative"):
        self.scenarios: dict[str, Scenario] = {}
        for folder in dirs:
            for path in sorted(Path(folder).glob("*.yaml")):
                self.add(load(path))
        self.default = default
        self._planned: dict[str, list[Scenario]] = {}
        self._lock = threading.Lock()  # plan() may be called from another thread

    def add(self, scenario: Scenario) -> None:
        clash = next(
            (
                s.name
                for s in self.scenarios.values()
                if scenario.number and s.number == scenario.number and s.name != scenario.name
            ),
            None,
        )
        if clash:
            raise ScenarioError(
                f"scenarios {clash!r} and {scenario.name!r} share {scenario.number}"
            )
        self.scenarios[scenario.name] = scenario

    def get(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise ScenarioError(
                f"no scenario {name!r}; known: {', '.join(sorted(self.scenarios))}"
            ) from None

    def by_number(self) -> dict[str, str]:
        return {s.number: s.name for s in self.scenarios.values() if s.number}

    def plan(self, to: str, scenario: str | Scenario) -> Scenario:
        chosen = self.get(scenario) if isinstance(scenario, str) else scenario
        with self._lock:
            self._planned.setdefault(to, []).append(chosen)
        return chosen

    def for_call(self, to: str) -> Scenario:
        """The scenario a new call to `to` plays (consumes a planned one)."""
        with self._lock:
            planned = self._planned.get(to)
            if planned:
                chosen = planned.pop(0)
                if not planned:
                    del self._planned[to]
                return chosen
        name = self.by_number().get(to) or self.default
        if name in self.scenarios:
            return self.scenarios[name]
        return Scenario(name="default", steps=(WaitAgent(), Say("Hello?"), WaitHangup()))
