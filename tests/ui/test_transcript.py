"""The live feed: incremental accumulation, event lines, the merged timeline."""

from __future__ import annotations

from ui.transcript import Feed, describe_event, timeline


def test_describe_event():
    def line(type_, **payload):
        return describe_event({"id": 1, "type": type_, "payload": payload})

    assert line("dtmf", digits="12#") == "DTMF `12#`"
    assert line("tool_call", name="transfer_call", arguments={"to": "+1"}) == (
        'Tool call `transfer_call({"to": "+1"})`'
    )
    assert line("status", status="completed", reason="bye") == "Status → **completed** (bye)"
    assert line("control", action="transfer", to="+1") == "Operator: transfer +1"
    assert line("provider", name="x") == 'provider: {"name": "x"}'


def test_timeline_orders_turns_and_inline_events():
    feed = Feed(call_id="c")
    feed.add_turns(
        [
            {"seq": 1, "speaker": "agent", "text": "a", "ended_at": "2025-01-01T10:00:01Z"},
            {"seq": 2, "speaker": "caller", "text": "b", "ended_at": "2025-01-01T10:00:05Z"},
        ]
    )
    feed.add_turns([{"seq": 2, "speaker": "caller", "text": "dup"}])  # already seen
    feed.add_events(
        [
            {"id": 7, "type": "dtmf", "payload": {}, "created_at": "2025-01-01T10:00:03Z"},
            {"id": 8, "type": "stream", "payload": {}, "created_at": "2025-01-01T10:00:04Z"},
        ]
    )
    order = [(kind, item.get("seq") or item.get("id")) for kind, item in timeline(feed)]
    assert order == [("turn", 1), ("event", 7), ("turn", 2)]
    assert feed.last_seq == 2 and feed.last_event == 8
