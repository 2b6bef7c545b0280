"""Per-call conversation state shared by the processors: history, stage, options, metrics, reply ids."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from calls.core.persona import PersonaSpec


@dataclass
class PipelineOptions:
    # Barge-in: caller speech must last this long, and not be a backchannel, to interrupt.
    min_interrupt_ms: int = 400
    backchannels: frozenset[str] = frozenset(
        {"uh-huh", "uh huh", "mhm", "mm-hmm", "mm hmm", "hmm", "yeah", "yep", "yes", "okay", "ok",
         "right", "sure", "i see", "got it", "alright", "uh", "um", "oh"}
    )  # fmt: skip
    silence_timeout_s: float = 10.0
    max_duration_s: float = 600.0
    nudge_text: str = "Are you still there?"
    fallback_text: str = "Sorry, I'm having trouble right now. Could you say that again?"
    llm_retries: int = 1
    max_tool_steps: int = 3


@dataclass
class Conversation:
    """The LLM-facing history (OpenAI chat format, without the system message)."""

    messages: list[dict] = field(default_factory=list)
    stage: str = ""
    # The assistant messages of each spoken reply, to cut them back to what the caller heard.
    replies: dict[int, list[dict]] = field(default_factory=dict)

    def add_caller(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def add_agent(self, text: str, tool_calls: list[dict] | None = None, reply_id: int = 0) -> None:
        message: dict = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if text or tool_calls:
            self.messages.append(message)
            self.replies.setdefault(reply_id, []).append(message)

    def set_heard(self, reply_id: int, heard: str) -> None:
        """Keep only the words the caller heard of an interrupted reply."""
        rest = heard.split()
        for message in self.replies.get(reply_id, []):
            words = (message.get("content") or "").split()
            take, rest = rest[: len(words)], rest[len(words) :]
            message["content"] = " ".join(take) or None
        self.messages = [
            m for m in self.messages
            if m["role"] != "assistant" or m.get("content") or m.get("tool_calls")
        ]  # fmt: skip

    def add_tool_result(self, call_id: str, result: dict) -> None:
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}
        )

    def transcript(self, limit: int = 40) -> str:
        lines = []
        for m in self.messages[-limit:]:
            if m["role"] in ("user", "assistant") and m.get("content"):
                who = "Caller" if m["role"] == "user" else "Agent"
                lines.append(f"{who}: {m['content']}")
        return "\n".join(lines)


@dataclass
class CallContext:
    persona: PersonaSpec
    # Renders the persona's system prompt for the current history and stage.
    system_prompt: Callable[[Conversation], str]
    tools: list[dict] = field(default_factory=list)
    options: PipelineOptions = field(default_factory=PipelineOptions)
    conversation: Conversation = field(default_factory=Conversation)
    clock: Callable[[], float] = time.monotonic
    # True while agent audio is queued or playing (set by the playout, read by turn-taking).
    agent_speaking: bool = False
    # Per reply: monotonic timestamps of each latency milestone, filled in as the reply goes.
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    # Numbers every reply of the call (the LLM's, a Say's, a realtime response) in one sequence.
    _reply_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False,
                                      repr=False)  # fmt: skip

    def next_reply_id(self) -> int:
        return next(self._reply_ids)

    def llm_messages(self) -> list[dict]:
        return [
            {"role": "system", "content": self.system_prompt(self.conversation)},
            *self.conversation.messages,
        ]
