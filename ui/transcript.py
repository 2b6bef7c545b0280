"""The live call's feed: turns and events accumulated from incremental polls, as one timeline."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ui.api_client import ApiClient, Call, Event, Turn
from ui.metrics import parse_ts

# Events shown inline in the transcript; the rest (stream, provider, latency) only in the table.
TIMELINE_EVENTS = frozenset(
    {"status", "stage", "dtmf", "tool_call", "control", "override", "error"}
)
EVENT_ICONS = {
    "status": ":material/swap_horiz:",
    "stage": ":material/flag:",
    "dtmf": ":material/dialpad:",
    "tool_call": ":material/build:",
    "control": ":material/support_agent:",
    "override": ":material/record_voice_over:",
    "error": ":material/error:",
}


# What turns text into markdown (links, images, HTML, emphasis) or into Streamlit's extensions of
# it (`$` LaTeX, `:color[...]`); backslash-escaped, each shows as itself.
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>!#$~|])")


def plain(text: object) -> str:
    """`text` (a caller's words, a model's arguments) for a markdown line: escaped so that it shows
    as written and can make no link, image or markup; one line. Whole turns use `st.text`."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    # Bare URLs become links in GitHub-flavoured markdown: break the patterns it looks for.
    return escaped.replace("://", ":\\/\\/").replace("www.", "www\\.")


def code(text: object) -> str:
    """`text` as an inline code span (nothing in it is markup; a backtick would end it)."""
    return "`" + " ".join(str(text).split()).replace("`", "'") + "`"


@dataclass
class Feed:
    """What the console has seen of one call; `poll` only asks for what is new."""

    call_id: str
    call: Call | None = None
    turns: list[Turn] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    last_seq: int = 0
    last_event: int = 0
    fresh: bool = False  # polled by this run's page body: the fragment's first draw skips it

    def poll(self, api: ApiClient) -> Call:
        # The call first: once it reads as ended, the turns fetched after it are complete.
        self.call = api.call(self.call_id)
        self.add_turns(api.turns(self.call_id, after=self.last_seq))
        self.add_events(api.events(self.call_id, after=self.last_event))
        return self.call

    def poll_for_page(self, api: ApiClient) -> Call:
        self.fresh = True
        return self.poll(api)

    def refresh(self, api: ApiClient) -> Call:
        """Poll, unless the page body just did in this same run."""
        if self.fresh and self.call is not None:
            self.fresh = False
            return self.call
        return self.poll(api)

    def add_turns(self, turns: Iterable[Turn]) -> None:
        for turn in turns:
            if turn["seq"] > self.last_seq:
                self.turns.append(turn)
                self.last_seq = turn["seq"]

    def add_events(self, events: Iterable[Event]) -> None:
        for event in events:
            if event["id"] > self.last_event:
                self.events.append(event)
                self.last_event = event["id"]


def _args(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def describe_event(event: Event) -> str:
    """One markdown line for an event (every value from the call escaped: `plain`, `code`);
    unknown payload shapes fall back to their JSON."""
    p = event.get("payload") or {}
    kind = event.get("type", "")
    if kind == "status":
        reason = f" ({plain(p['reason'])})" if p.get("reason") else ""
        return f"Status → **{plain(p.get('status', '?'))}**{reason}"
    if kind == "stage":
        return f"Stage → **{plain(p.get('stage', '?'))}**"
    if kind == "dtmf":
        digits = p.get("digits") or p.get("digit") or _args(p)
        who = f" by {plain(p['by'])}" if p.get("by") else ""
        return f"DTMF {code(digits)}{who}"
    if kind == "tool_call":
        name = p.get("name") or p.get("tool") or "tool"
        args = _args(p.get("arguments", p.get("args")))
        result = f" → {plain(_args(p['result']))}" if p.get("result") not in (None, "") else ""
        return f"Tool call {code(f'{name}({args})')}{result}"
    if kind == "control":
        action = plain(p.get("action", "?"))
        detail = plain(p.get("to") or p.get("digits") or "")
        if p.get("reason") or action == "transferred":
            # The call acting on its own (the agent's end_call / transfer_call), not the operator.
            done = {"hangup": "Hung up", "transferred": "Transferred to"}.get(action, action)
            reason = f" ({plain(p['reason'])})" if p.get("reason") else ""
            return f"{done} {detail}".rstrip() + reason
        return f"Operator: {action} {detail}".rstrip()
    if kind == "override":
        return f"Operator said: “{plain(p.get('text', ''))}”"
    if kind == "error":
        return f"Error: {plain(p.get('message') or p.get('detail') or _args(p))}"
    return f"{plain(kind)}: {plain(_args(p))}"


def timeline(feed: Feed) -> list[tuple[str, Turn | Event]]:
    """Turns and inline events in time order: [("turn", turn) | ("event", event)]."""

    def key(item: tuple[str, Any]) -> tuple[float, int]:
        kind, obj = item
        if kind == "turn":
            ts = parse_ts(obj.get("ended_at") or obj.get("started_at"))
        else:
            ts = parse_ts(obj.get("created_at"))
        return (ts.timestamp() if ts else float("-inf"), 0 if kind == "event" else 1)

    items: list[tuple[str, Any]] = [("turn", t) for t in feed.turns]
    items += [("event", e) for e in feed.events if e.get("type") in TIMELINE_EVENTS]
    return sorted(items, key=key)
