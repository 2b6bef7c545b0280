"""A deterministic, offline dialogue engine with the LLM interface: persona QA, stages and tools."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from calls.core.persona import PersonaSpec, Stage
from calls.providers.llm import scripted_match as m
from calls.providers.llm.base import LLMDone, LLMEvent, LLMProvider, LLMRequest, TextDelta, ToolCall

DEFAULT_GREETING = "Hello, this is {agent_name}. How can I help you today?"
DEFAULT_GOODBYE = "Thank you for your time. Goodbye!"
ANYTHING_ELSE = "Is there anything else I can help you with?"
NOT_CAUGHT = "Sorry, I didn't catch that. Could you say that again?"
DONT_KNOW = (
    "I'm sorry, I don't have that information. Someone from our team can follow up with you."
)
NO_TRANSFER = "I'm sorry, I can't transfer you right now, but I'm happy to help."
TRANSFERRING = "Of course. Let me transfer you to a colleague now."
NO_KEYS = "I'm sorry, I can't press keys on this call."
STILL_THERE = "Are you still there?"
TOOL_FAILED = "I'm sorry, that didn't work. Is there anything else I can help you with?"
# Said after a tool's result comes back; "" = stay silent (the call ended, or an IVR is talking).
TOOL_FOLLOW_UPS = {
    "transfer_call": "Please hold while I connect you.",
    "press_digits": "",
    "end_call": "",
    "set_stage": "",
}
DEFAULT_FOLLOW_UP = "All done. " + ANYTHING_ELSE
STRICT_QA_THRESHOLD = 0.85  # for statements: answering a stage question often echoes a QA's words
QUOTED = re.compile(r"[\"“][^\"”]+[\"”]")  # a stage instruction quoting the line to say
# A stage whose instruction is to say goodbye is reached by saying the persona's goodbye.
CLOSING = re.compile(r"\b(?:good-?bye|bye|end the call|hang up)\b", re.I)

_SUBJECT = r"\b(?:they|he|she|the (?:caller|candidate|customer|client|prospect|lead|user|person))\b"
_SWAPS = [
    (rf"{_SUBJECT}'s\b", "your"),
    (r"\bthey're\b", "you're"),
    (r"\b(?:their|his|her)\b", "your"),
    (r"\btheirs\b", "yours"),
    (r"\bthemselves\b", "yourself"),
    (rf"\bthem\b|\bhim\b|{_SUBJECT}", "you"),
    (r"\byou is\b", "you are"),
    (r"\byou was\b", "you were"),
    (r"\byou has\b", "you have"),
    (r"\byou does\b", "you do"),
]
_INVERT = {"is": "Are", "are": "Are", "was": "Were", "were": "Were", "does": "Do", "do": "Do"}
_MODALS = ("can", "could", "will", "would", "should", "may", "might")


@dataclass(frozen=True, slots=True)
class Reply:
    """What to say, the tool to call after it, and the stage the conversation moves to with it
    (a `set_stage` call streamed before the tool, when the persona's tools include it)."""

    text: str
    tool: str | None = None
    arguments: dict = field(default_factory=dict)
    stage: str = ""


def _fill(text: str, persona: PersonaSpec | None) -> str:
    """Replace {name} / {{name}} placeholders with persona variables; unknown ones stay."""
    values = {"agent_name": persona.agent_name, "name": persona.name} if persona else {}
    values.update({k: str(v) for k, v in (persona.variables if persona else {}).items()})
    return re.sub(
        r"\{\{?\s*(\w+)\s*\}?\}", lambda g: values.get(g.group(1), g.group(0)), text
    ).strip()


def _to_caller(text: str) -> str:
    """Third person about the caller ("their email") -> second person ("your email")."""
    for pattern, repl in _SWAPS:
        text = re.sub(pattern, repl, text, flags=re.I)
    return text


def _sentence(text: str, end: str = ".") -> str:
    text = text.strip().rstrip(".?!")
    return text[:1].upper() + text[1:] + end if text else ""


def _question_about(clause: str) -> str:
    """'whether you are free on Monday' -> 'Are you free on Monday?'."""
    yes_no = re.match(r"(?:whether|if)\s+you\s+(\w+)\s*(.*)", clause, re.I)
    if not yes_no:  # a wh-clause or a noun phrase
        return _sentence(f"could you tell me {clause}", "?")
    verb, rest = yes_no.group(1).lower(), yes_no.group(2)
    if verb in _INVERT:
        return _sentence(f"{_INVERT[verb]} you {rest}", "?")
    if verb in _MODALS:
        return _sentence(f"{verb} you {rest}", "?")
    if verb in ("have", "has"):
        participle = re.match(r"\w+(?:ed|en)\b", rest)
        return _sentence(f"{'Have you' if participle else 'Do you have'} {rest}", "?")
    return _sentence(f"do you {verb} {rest}", "?")


def stage_line(stage: Stage, persona: PersonaSpec | None) -> str:
    """A spoken line from a stage's instruction ("Ask whether they have a licence" -> "Do you ...?")."""
    desc = _fill(stage.description or stage.name, persona)
    quoted = re.search(r"[\"“]([^\"”]+)[\"”]", desc)
    if quoted:
        return quoted.group(1).strip()
    first = desc.split(" ", 1)[0].lower().rstrip(":,")
    rest = _to_caller(desc.split(" ", 1)[1] if " " in desc else "").strip()
    rest = re.split(r"(?<=[.!?])\s", rest, maxsplit=1)[0].rstrip(".")  # the first instruction only
    if first == "ask":
        rest = re.sub(r"^you\s+(?=(?:whether|if|about|for|to|what|when|where|which|who|why|how)\b)",
                      "", rest, flags=re.I)  # fmt: skip
        if rest.lower().startswith("about "):
            return _sentence(f"could you tell me {rest}", "?")
        if rest.lower().startswith("for "):
            return _sentence(f"may I have {rest[4:]}", "?")
        if rest.lower().startswith("to "):
            return _sentence(f"could you please {rest[3:]}", "?")
        return _question_about(rest)
    if first in ("find", "determine", "check", "learn", "verify", "confirm", "understand"):
        rest = re.sub(r"^out\s+", "", rest)
        if re.match(r"(?:whether|if|what|when|where|which|who|why|how)\b", rest, re.I):
            return _question_about(rest)
        return _sentence(f"could you confirm {rest}", "?")
    if first in ("collect", "get", "gather", "obtain", "request"):
        return _sentence(f"could you give me {rest}", "?")
    if first in ("schedule", "book", "arrange", "offer", "propose", "set"):
        return _sentence(f"would you like to {first} {rest}", "?")
    if first in ("introduce", "greet"):
        company = persona.variables.get("company", "") if persona else ""
        agent = persona.agent_name if persona else "your assistant"
        return f"Hi, this is {agent}" + (f" from {company}." if company else ".")
    if first in ("say", "tell", "inform", "explain", "mention", "state", "thank"):
        rest = re.sub(r"^you\s+", "", rest) if first != "thank" else rest
        if rest.lower().startswith("that "):
            return _sentence(rest[5:])
        verb = {"inform": "tell", "state": "say"}.get(first, first)
        return _sentence(f"thank {rest}" if first == "thank" else f"let me {verb} you {rest}")
    return _sentence(desc, desc.rstrip()[-1:] if desc.rstrip()[-1:] in "?!" else ".")


def _text(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _offered(tools: list) -> set[str]:
    names = set()
    for tool in tools:
        if isinstance(tool, str):
            names.add(tool)
        elif isinstance(tool, dict):
            names.add((tool.get("function") or tool).get("name", ""))
    return names


def _tool_name(messages: list[dict], call_id: str) -> str:
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if call.get("id") == call_id:
                return (call.get("function") or call).get("name", "")
    return ""


def _said(line: str, spoken: list[str]) -> bool:
    """True if the line's opening words (up to 8) were spoken in one assistant turn."""
    head = " ".join(m.words(line)[:8])
    return bool(head) and any(f" {head} " in f" {' '.join(m.words(t))} " for t in spoken)


def _recorded_stages(messages: list[dict]) -> set[str]:
    """The stages named by the `set_stage` calls in the history."""
    names = set()
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or call
            if function.get("name") != "set_stage":
                continue
            arguments = function.get("arguments") or {}
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    continue
            if isinstance(arguments, dict) and arguments.get("stage"):
                names.add(str(arguments["stage"]))
    return names


def _closing(stage: Stage) -> bool:
    """A stage whose own instruction (not a line it quotes) is to say goodbye."""
    return bool(CLOSING.search(QUOTED.sub("", stage.description or "")))


class Dialogue:
    """Decides one reply from the request; every method is a pure function of the request."""

    def __init__(self, request: LLMRequest, qa_threshold: float):
        self.request = request
        self.persona = request.persona
        self.tools = _offered(request.tools)
        self.qa_threshold = qa_threshold
        msgs = request.messages
        self.spoken = [_text(x) for x in msgs if x.get("role") == "assistant" and _text(x)]
        self.stages = list(self.persona.stages) if self.persona else []
        self.recorded = _recorded_stages(msgs)
        self.lines = [stage_line(s, self.persona) for s in self.stages]

    def _stages_reached(self) -> list[int]:
        """Indexes of the stages the caller has heard: each stage line spoken whole (a line cut
        off by the caller is said again), and an introduction once anything was said."""
        reached = [i for i, line in enumerate(self.lines) if _said(line, self.spoken)]
        if self.spoken:  # the greeting covers an introduction stage
            reached += [i for i, s in enumerate(self.stages)
                        if re.search(r"introduc|greet", f"{s.name} {s.description}", re.I)]  # fmt: skip
        return reached

    def _with_stage(self, reply: Reply, index: int) -> Reply:
        """`reply`, recording stage `index` with it (once, and never going back)."""
        if "set_stage" not in self.tools or not 0 <= index < len(self.stages):
            return reply
        name = self.stages[index].name
        last = max((i for i, s in enumerate(self.stages) if s.name in self.recorded), default=-1)
        if name in self.recorded or index < last:
            return reply
        return Reply(reply.text, reply.tool, reply.arguments, stage=name)

    def reply(self) -> Reply:
        msgs = self.request.messages
        last = msgs[-1] if msgs else {}
        if last.get("role") == "tool":
            return self._after_tool(last)
        if last.get("role") != "user":
            if not self.spoken:
                return Reply(self._greeting())
            return Reply(STILL_THERE)
        return self._answer(_text(last).strip())

    def _greeting(self) -> str:
        greeting = self.persona.greeting if self.persona else ""
        return _fill(
            greeting or DEFAULT_GREETING, self.persona or PersonaSpec("", "your assistant")
        )

    def _goodbye(self) -> Reply:
        """The persona's goodbye (and end_call); the conversation moves to its closing stage."""
        text = _fill(
            (self.persona.goodbye if self.persona else "") or DEFAULT_GOODBYE, self.persona
        )
        reply = Reply(text, "end_call") if "end_call" in self.tools else Reply(text)
        closing = [i for i, s in enumerate(self.stages) if _closing(s)]
        return self._with_stage(reply, closing[-1] if closing else len(self.stages) - 1)

    def _after_tool(self, message: dict) -> Reply:
        name = _tool_name(self.request.messages, message.get("tool_call_id", ""))
        if re.search(r"\b(error|fail(ed|ure)?|unavailable|busy|no answer)\b", _text(message), re.I):
            return Reply("" if name == "end_call" else TOOL_FAILED)
        return Reply(TOOL_FOLLOW_UPS.get(name, DEFAULT_FOLLOW_UP))

    def _answer(self, said: str) -> Reply:
        if not m.words(said):
            return Reply(NOT_CAUGHT)
        options = m.menu_options(said)
        if options or m.requested_digits(said):
            return self._press(said, options)
        if m.wants_human(said):
            return (
                Reply(TRANSFERRING, "transfer_call")
                if "transfer_call" in self.tools
                else Reply(NO_TRANSFER)
            )
        if m.is_goodbye(said):
            return self._goodbye()
        qa = self.persona.qa if self.persona else ()
        threshold = (
            self.qa_threshold
            if m.is_question(said)
            else max(self.qa_threshold, STRICT_QA_THRESHOLD)
        )
        hit = m.best_match(said, [q.question for q in qa], threshold)
        if hit is not None:
            return Reply(_fill(qa[hit].answer, self.persona))
        return self._next_stage(said)

    def _press(self, said: str, options: list[m.MenuOption]) -> Reply:
        if "press_digits" not in self.tools:
            return Reply("" if options else NO_KEYS)  # no talking over a menu
        if options:
            persona = self.persona
            goal = " ".join(
                [str(persona.variables.get("goal", "")), persona.name, *(s.name for s in persona.stages)]
                if persona else []
            )  # fmt: skip
            digits = m.choose_option(options, goal).digits
        else:
            digits = m.requested_digits(said) or ""
        return Reply("", "press_digits", {"digits": digits})

    def _next_stage(self, said: str) -> Reply:
        ack = "Great. " if m.is_yes(said) else "I understand. " if m.is_no(said) else "Thank you. "
        following = max(self._stages_reached(), default=-1) + 1
        if following < len(self.lines):
            if _closing(self.stages[following]):
                return self._goodbye()
            # No ack before the agent's first words (it waited for the other side), nor before a
            # line the persona quotes: that line is said exactly as written.
            if not self.spoken or QUOTED.search(self.stages[following].description or ""):
                ack = ""
            return self._with_stage(Reply(ack + self.lines[following]), following)
        if m.is_question(said):
            return Reply(DONT_KNOW)
        if not _said(ANYTHING_ELSE, self.spoken):
            return Reply(ack + ANYTHING_ELSE)
        return self._goodbye() if m.is_no(said) else Reply(DONT_KNOW)


class ScriptedLLM(LLMProvider):
    """Streams a reply word by word, then at most one tool call, then LLMDone.

    token_delay_s: pause between word pieces (0 = as fast as the loop runs).
    qa_threshold: 0..1 match score needed to answer from the persona's QA for a question
    (statements need STRICT_QA_THRESHOLD).
    """

    name = "scripted"

    def __init__(self, *, token_delay_s: float = 0.0, qa_threshold: float = 0.6):
        self.token_delay_s = token_delay_s
        self.qa_threshold = qa_threshold

    def plan(self, request: LLMRequest) -> Reply:
        return Dialogue(request, self.qa_threshold).reply()

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMEvent]:
        reply = self.plan(request)
        pieces = re.findall(r"\s*\S+", reply.text)
        for piece in pieces:
            yield TextDelta(piece)
            await asyncio.sleep(self.token_delay_s)
        calls = [("set_stage", {"stage": reply.stage})] if reply.stage else []
        calls += [(reply.tool, dict(reply.arguments))] if reply.tool else []
        for name, arguments in calls:
            yield ToolCall(
                id=f"call_{len(request.messages)}_{name}", name=name, arguments=arguments
            )
        prompt = sum(len(_text(x).split()) for x in request.messages)
        usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces) + len(calls)}
        yield LLMDone("tool_calls" if calls else "stop", usage)
