"""The scripted dialogue engine: greeting, QA, stages in order, every tool, streaming."""

from __future__ import annotations

import pytest

from calls.core.persona import QA, PersonaSpec, Stage
from calls.providers.llm.base import LLMDone, LLMRequest, TextDelta, ToolCall
from calls.providers.llm.scripted import ScriptedLLM, stage_line
from calls.providers.llm.scripted_match import menu_options, requested_digits

PERSONA = PersonaSpec(
    name="Warehouse recruiter",
    agent_name="Anna",
    greeting="Hi, this is {agent_name} from {company}. Do you have a minute?",
    goodbye="Thanks for your time, {caller_name}. Goodbye!",
    stages=(
        Stage("Introduction", "Introduce yourself and the company."),
        Stage("Interest", "Ask whether the candidate is interested in the warehouse position."),
        Stage("License", "Ask if they have a forklift license."),
        Stage("Start date", "Ask when they can start."),
    ),
    qa=(
        QA("What is the salary?", "The pay is 20 dollars an hour."),
        QA("What are the working hours?", "Shifts are eight hours, Monday to Friday."),
        QA("Do I need a forklift license?", "A license helps, but we can train you."),
    ),
    tools=("end_call", "transfer_call", "press_digits"),
    transfer_number="+15550100",
    variables={"company": "Acme Logistics", "caller_name": "John", "goal": "job applications"},
)
ALL_TOOLS = [{"type": "function", "function": {"name": n}} for n in PERSONA.tools]
SYSTEM = {"role": "system", "content": "You are Anna."}


def _request(history: list[tuple[str, str]], tools=ALL_TOOLS, persona=PERSONA) -> LLMRequest:
    messages = [SYSTEM] + [{"role": role, "content": text} for role, text in history]
    return LLMRequest(messages=messages, tools=tools, persona=persona)


async def _events(request: LLMRequest, llm: ScriptedLLM | None = None) -> list:
    return [e async for e in (llm or ScriptedLLM()).stream(request)]


async def _say(history, tools=ALL_TOOLS, persona=PERSONA) -> tuple[str, ToolCall | None]:
    events = await _events(_request(history, tools, persona))
    assert isinstance(events[-1], LLMDone)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [e for e in events if isinstance(e, ToolCall)]
    return text, (calls[0] if calls else None)


async def test_greets_first_with_variables_filled():
    text, tool = await _say([])
    assert text == "Hi, this is Anna from Acme Logistics. Do you have a minute?" and tool is None


async def test_walks_the_stages_in_order():
    history: list[tuple[str, str]] = [("assistant", (await _say([]))[0])]
    replies = []
    for caller in ("Yes, sure.", "Yes, I am.", "No, I don't.", "Next Monday."):
        history.append(("user", caller))
        text, _ = await _say(history)
        replies.append(text)
        history.append(("assistant", text))
    assert replies == [
        "Great. Are you interested in the warehouse position?",
        "Great. Do you have a forklift license?",
        "I understand. Could you tell me when you can start?",
        "Thank you. Is there anything else I can help you with?",
    ]
    history.append(("user", "No, that's it."))
    text, tool = await _say(history)
    assert text == "Thanks for your time, John. Goodbye!" and tool.name == "end_call"


async def test_answers_qa_tolerantly_and_resumes_the_stage_after():
    greeting = (await _say([]))[0]
    history = [("assistant", greeting), ("user", "Sorry, what's the salary range?")]
    text, tool = await _say(history)
    assert text == "The pay is 20 dollars an hour." and tool is None
    history += [("assistant", text), ("user", "Okay, great. And what are the working hours?")]
    assert (await _say(history))[0] == "Shifts are eight hours, Monday to Friday."
    history += [("assistant", "Shifts are eight hours, Monday to Friday."), ("user", "Okay.")]
    assert (await _say(history))[0] == "Great. Are you interested in the warehouse position?"


async def test_a_statement_echoing_a_question_walks_on_instead():
    history = [
        ("assistant", "Do you have a forklift license?"),
        ("user", "Yes, I have a forklift license."),
    ]
    text, _ = await _say(history)
    assert text != "A license helps, but we can train you."


@pytest.mark.parametrize("said", ["Goodbye.", "Okay, bye!", "That's all, thank you."])
async def test_goodbye_words_end_the_call(said):
    text, tool = await _say([("assistant", "Hi."), ("user", said)])
    assert text == "Thanks for your time, John. Goodbye!"
    assert tool.name == "end_call" and tool.arguments == {}


async def test_goodbye_without_the_tool_only_says_goodbye():
    text, tool = await _say([("assistant", "Hi."), ("user", "Goodbye.")], tools=[])
    assert text.endswith("Goodbye!") and tool is None


@pytest.mark.parametrize(
    "said", ["I would like to speak to a human.", "Can I talk to someone?", "Get me a supervisor."]
)
async def test_human_request_transfers(said):
    text, tool = await _say([("assistant", "Hi."), ("user", said)])
    assert tool.name == "transfer_call" and tool.arguments == {}
    assert "transfer" in text.lower()


async def test_human_request_without_the_tool_is_declined_politely():
    text, tool = await _say([("assistant", "Hi."), ("user", "Let me speak to a human.")], tools=[])
    assert tool is None and "can't transfer" in text


async def test_ivr_menu_presses_the_option_matching_the_goal():
    menu = "Press 1 for sales. For job applications, press 2. To speak to an operator, press 0."
    text, tool = await _say([("user", menu)])
    assert text == "" and tool.name == "press_digits" and tool.arguments == {"digits": "2"}


async def test_ivr_menu_without_a_matching_option_asks_for_a_person():
    menu = "For billing press one. For a representative press zero."
    _, tool = await _say([("user", menu)])
    assert tool.arguments == {"digits": "0"}


async def test_caller_asking_for_digits_gets_them_pressed():
    _, tool = await _say([("assistant", "Hi."), ("user", "Please dial 2 0 4 for my extension.")])
    assert tool.name == "press_digits" and tool.arguments == {"digits": "204"}


async def test_follow_up_lines_after_tool_results():
    history = [
        SYSTEM,
        {"role": "user", "content": "I want to talk to a person."},
        {
            "role": "assistant",
            "content": "Of course.",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "transfer_call"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]
    events = await _events(LLMRequest(messages=history, tools=ALL_TOOLS, persona=PERSONA))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Please hold while I connect you."
    history[-1] = {"role": "tool", "tool_call_id": "t1", "content": "error: no answer"}
    events = await _events(LLMRequest(messages=history, tools=ALL_TOOLS, persona=PERSONA))
    assert "didn't work" in "".join(e.text for e in events if isinstance(e, TextDelta))
    history[2]["tool_calls"][0]["function"]["name"] = "end_call"
    history[-1] = {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    events = await _events(LLMRequest(messages=history, tools=ALL_TOOLS, persona=PERSONA))
    assert events == [LLMDone("stop", events[-1].usage)]


async def test_streams_word_pieces_then_the_tool_call_then_done():
    request = _request([("assistant", "Hi."), ("user", "Goodbye.")])
    events = await _events(request, ScriptedLLM(token_delay_s=0.001))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 6  # "Thanks for your time, John. Goodbye!"
    assert deltas[0].text == "Thanks" and deltas[1].text == " for"
    assert isinstance(events[-2], ToolCall) and events[-1].finish_reason == "tool_calls"
    assert events == await _events(request)  # deterministic


async def test_without_a_persona_it_still_converses():
    text, _ = await _say([], persona=None)
    assert text == "Hello, this is your assistant. How can I help you today?"
    text, tool = await _say([("assistant", text), ("user", "Bye.")], persona=None)
    assert text == "Thank you for your time. Goodbye!" and tool.name == "end_call"


def test_stage_lines_read_naturally():
    def line(description: str) -> str:
        return stage_line(Stage("s", description), PERSONA)

    assert line("Ask whether the caller is available next week.") == "Are you available next week?"
    assert line("Ask if they can work nights.") == "Can you work nights?"
    assert line("Ask if they have worked in a warehouse.") == "Have you worked in a warehouse?"
    assert line("Ask for their email address.") == "May I have your email address?"
    assert line("Ask how many years of experience they have.") == (
        "Could you tell me how many years of experience you have?"
    )
    assert line("Collect their postcode.") == "Could you give me your postcode?"
    assert line("Schedule an interview.") == "Would you like to schedule an interview?"
    assert line("Explain that the pay is weekly.") == "The pay is weekly."
    assert line('Say "We will email you the details."') == "We will email you the details."
    assert line("Introduce yourself.") == "Hi, this is Anna from Acme Logistics."


def test_menu_and_digit_parsing():
    options = menu_options("Press 1 for sales, press 2 for support. For billing, press 3.")
    assert [(o.digits, o.label) for o in options] == [
        ("1", "sales"),
        ("2", "support"),
        ("3", "billing"),
    ]
    assert requested_digits("please press star") == "*"
    assert requested_digits("I pressed nothing") is None


def test_menu_options_without_punctuation():
    from calls.providers.llm.scripted_match import menu_options

    options = menu_options(
        "press 1 for claims press 2 for prior authorizations press 3 for billing"
    )
    assert [(o.digits, o.label) for o in options] == [
        ("1", "claims"), ("2", "prior authorizations"), ("3", "billing"),
    ]  # fmt: skip
