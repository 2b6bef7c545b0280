"""The scripted engine moves the call through the persona's stages as the conversation goes: each
stage it reaches is recorded with `set_stage` (once, never backwards), and the goodbye reaches the
closing stage, as a real LLM given the same tools would."""

from __future__ import annotations

import json

from calls.core.persona import QA, PersonaSpec, Stage
from calls.pipeline.tools import tool_schemas
from calls.providers.llm.base import LLMRequest, TextDelta, ToolCall
from calls.providers.llm.scripted import ScriptedLLM

PERSONA = PersonaSpec(
    name="Recruiting",
    agent_name="Myra",
    greeting="Hi, this is Myra. Am I speaking with Jordan?",
    goodbye="Thanks, Jordan. Goodbye!",
    stages=(
        Stage("introduction", "Introduce yourself and confirm it is the applicant."),
        Stage("interest", "Ask whether they are still interested in the position."),
        Stage("availability", "Ask when they are free for an interview this week."),
        Stage("questions", "Ask if they have any questions about the role."),
        Stage("close", "Confirm the next steps and say goodbye."),
    ),
    qa=(QA("Is the job remote?", "It's hybrid: two days a week in the office."),),
    tools=("end_call", "transfer_call"),
)
TOOLS = tool_schemas(PERSONA)  # set_stage is offered to a persona with stages


class Call:
    """The history as the pipeline keeps it: tool calls in the assistant message, then results."""

    def __init__(self, persona: PersonaSpec = PERSONA, tools: list[dict] = TOOLS) -> None:
        self.persona, self.tools = persona, tools
        self.messages: list[dict] = [{"role": "system", "content": "You are Myra."}]
        self.messages.append({"role": "assistant", "content": persona.greeting})
        self.stages: list[str] = []

    async def caller(self, text: str) -> tuple[str, list[ToolCall]]:
        self.messages.append({"role": "user", "content": text})
        request = LLMRequest(messages=list(self.messages), tools=self.tools, persona=self.persona)
        events = [e async for e in ScriptedLLM().stream(request)]
        said = "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
        calls = [e for e in events if isinstance(e, ToolCall)]
        message: dict = {"role": "assistant", "content": said or None}
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in calls
            ]  # fmt: skip
        self.messages.append(message)
        for c in calls:
            self.messages.append({"role": "tool", "tool_call_id": c.id, "content": '{"ok": true}'})
            if c.name == "set_stage":
                self.stages.append(c.arguments["stage"])
        return said, calls


async def test_a_whole_call_walks_every_stage_to_the_close():
    call = Call()
    for line in ("Yes, this is Jordan.", "Yes, I am.", "Thursday afternoon."):
        await call.caller(line)
    assert call.stages == ["interest", "availability", "questions"]
    said, _ = await call.caller("Is the job remote?")
    assert said.startswith("It's hybrid") and call.stages[-1] == "questions"
    said, calls = await call.caller("No, that's all. Goodbye.")
    assert said == "Thanks, Jordan. Goodbye!"
    assert [(c.name, c.arguments) for c in calls] == [("set_stage", {"stage": "close"}),
                                                      ("end_call", {})]  # fmt: skip
    assert call.stages == ["interest", "availability", "questions", "close"]


async def test_no_questions_goes_to_the_closing_stage_with_the_goodbye():
    call = Call()
    for line in ("Yes.", "Yes.", "Thursday."):
        await call.caller(line)
    said, calls = await call.caller("No, I don't have any questions.")
    assert said == "Thanks, Jordan. Goodbye!"
    assert [c.name for c in calls] == ["set_stage", "end_call"]
    assert call.stages[-1] == "close"


async def test_an_early_goodbye_jumps_to_the_close_and_each_stage_is_recorded_once():
    call = Call()
    await call.caller("Yes, this is Jordan.")
    said, _ = await call.caller("Sorry, I have to go. Goodbye.")
    assert said == "Thanks, Jordan. Goodbye!"
    assert call.stages == ["interest", "close"]
    assert len(set(call.stages)) == len(call.stages)


async def test_a_line_cut_off_is_said_again_without_recording_its_stage_again():
    call = Call()
    await call.caller("Yes, this is Jordan.")
    assert call.stages == ["interest"]
    call.messages[-2]["content"] = "Great."  # barge-in: the caller heard only this of the line
    said, calls = await call.caller("Oh, sorry, go on.")
    assert said.endswith("Are you still interested in the position?")
    assert calls == [] and call.stages == ["interest"]


async def test_without_the_tool_nothing_is_recorded():
    call = Call(tools=[t for t in TOOLS if t["function"]["name"] != "set_stage"])
    for line in ("Yes.", "Yes.", "Thursday.", "No, that's all. Goodbye."):
        _, calls = await call.caller(line)
    assert call.stages == [] and [c.name for c in calls] == ["end_call"]


async def test_a_quoted_line_with_a_goodbye_in_it_is_said_as_written():
    persona = PersonaSpec(
        name="Desk", agent_name="Riley", goodbye="Bye now!", tools=("end_call",),
        stages=(Stage("verify", 'Ask "May I have the account number?"'),
                Stage("close", 'Say "Your reference is R 2. Thank you. Goodbye."')),
    )  # fmt: skip
    call = Call(persona, tool_schemas(persona))
    said, _ = await call.caller("Hi, I need help with a charge.")
    assert said == "May I have the account number?"
    said, _ = await call.caller("It is 4417.")
    assert said == "Your reference is R 2. Thank you. Goodbye." and call.stages[-1] == "close"
