"""A caller's words (and what a model writes from them) are shown as text, never as markdown: no
link, image, HTML or LaTeX can be injected into the console."""

from __future__ import annotations

import pytest

from calls import services
from calls.status import CallStatus
from tests.ui.helpers import texts
from ui.transcript import code, describe_event, plain

LIVE = "views/live.py"
INJECTED = "Click [here](http://evil.example/x) ![](http://evil.example/p.png) <b>hi</b> $x$ **b**"


def as_markup(at) -> str:
    """What the page renders as markdown (markdown, captions)."""
    return "\n".join(texts(at, "markdown") + texts(at, "caption"))


@pytest.mark.parametrize(
    "text", [INJECTED, "see www.evil.example or https://evil.example", ":red[alarm] `x` \\"]
)
def test_plain_text_has_no_markup_left(text):
    escaped = plain(text)
    for active in ("[here](", "![", "<b>", "$x$", "**b**", "https://", "www.", ":red[", "`x`"):
        assert active not in escaped
    assert code("a`b") == "`a'b`"


def test_an_event_made_of_the_callers_words_is_escaped():
    line = describe_event(
        {"id": 1, "type": "override", "payload": {"text": "[win](http://evil.example)"}}
    )
    assert line == "Operator said: “\\[win\\]\\(http:\\/\\/evil.example\\)”"
    tool = describe_event(
        {"id": 2, "type": "tool_call",
         "payload": {"name": "transfer_call", "arguments": {"to": "`![x](y)`"}}}
    )  # fmt: skip
    assert tool.count("`") == 2  # one code span: the arguments cannot close it


@pytest.mark.console
def test_the_live_page_shows_turns_and_the_summary_as_text(console, make_call):
    call = make_call()
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    services.turn_append(call_id=call.pk, speaker="caller", text=INJECTED)
    services.turn_append(
        call_id=call.pk, speaker="agent", text=f"Sure. {INJECTED}", heard_text="Sure.",
        interrupted=True,
    )  # fmt: skip
    services.call_update_outcome(call_id=call.pk, summary=f"Caller said {INJECTED}")
    services.call_set_status(call_id=call.pk, status=CallStatus.COMPLETED)

    at = console(LIVE, call=str(call.uuid))
    assert not at.exception, at.exception
    shown = texts(at, "text")
    assert INJECTED in shown and "Sure." in shown and f"Caller said {INJECTED}" in shown
    markup = as_markup(at)
    assert "](http" not in markup and "<b>" not in markup and "![" not in markup
    assert "Interrupted. Full text: Sure. Click \\[here\\]" in markup
