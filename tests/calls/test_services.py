"""Call writes: creation checks, status changes, turns and events."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from calls import events, services
from calls.models import Call, CallEvent, Turn
from calls.status import CallStatus, IllegalTransition

MYRA_VARS = {"applicant_name": "Ann", "position": "SRE"}


@pytest.fixture
def call(myra):
    return services.call_create(persona=myra, to="+14155550100", variables=MYRA_VARS)


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["4155550100", "+1415", "+1 (415) 555-01", "hello", ""])
def test_invalid_numbers_are_rejected(myra, number):
    with pytest.raises(ValidationError) as info:
        services.call_create(persona=myra, to=number, variables=MYRA_VARS)
    assert "to" in info.value.message_dict
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_number_is_normalised_to_e164(myra):
    call = services.call_create(persona=myra, to="+1 415-555-0100", variables=MYRA_VARS)
    assert str(call.to_number) == "+14155550100"


@pytest.mark.django_db
def test_missing_template_variables_are_rejected(myra):
    with pytest.raises(ValidationError, match="applicant_name"):
        services.call_create(persona=myra, to="+14155550100", variables={"position": "SRE"})
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_status_life_cycle_sets_timestamps_and_events(call):
    services.call_set_status(call_id=call.pk, status=CallStatus.RINGING)
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS, answered_by="human")
    done, changed = services.call_set_status(
        call_id=call.pk, status=CallStatus.COMPLETED, duration=42
    )
    assert changed and done.status == "completed" and done.duration == 42
    assert done.answered_at and done.ended_at and done.answered_by == "human"
    statuses = [e.payload["status"] for e in CallEvent.objects.filter(call=call, type="status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]


@pytest.mark.django_db
def test_late_status_never_moves_back(call):
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    services.call_set_status(call_id=call.pk, status=CallStatus.COMPLETED)
    again, changed = services.call_set_status(call_id=call.pk, status=CallStatus.RINGING)
    assert not changed and again.status == "completed"


@pytest.mark.django_db
def test_illegal_transition_raises_and_writes_nothing(call):
    services.call_set_status(call_id=call.pk, status=CallStatus.IN_PROGRESS)
    events = CallEvent.objects.count()
    with pytest.raises(IllegalTransition):
        services.call_set_status(call_id=call.pk, status=CallStatus.BUSY)
    call.refresh_from_db()
    assert call.status == "in-progress" and CallEvent.objects.count() == events


@pytest.mark.django_db
def test_turns_get_consecutive_sequence_numbers(call):
    services.turn_append(call_id=call.pk, speaker="agent", text="Hello")
    services.turn_append(call_id=call.pk, speaker="caller", text="Hi")
    services.turn_append(
        call_id=call.pk, speaker="agent", text="Long reply", heard_text="Long", interrupted=True
    )
    turns = list(Turn.objects.filter(call=call))
    assert [t.seq for t in turns] == [1, 2, 3]
    assert turns[2].interrupted and turns[2].heard_text == "Long"


@pytest.mark.django_db
def test_turns_of_several_calls_are_appended_in_order_in_two_statements(
    call, myra, monkeypatch, django_capture_on_commit_callbacks
):
    other = services.call_create(persona=myra, to="+14155550101", require_variables=False)
    services.turn_append(call_id=call.pk, speaker="agent", text="Hello")
    published = []
    monkeypatch.setattr(
        events, "publish_turn", lambda uuid, turn: published.append((uuid, turn.seq, turn.text))
    )
    turns = [
        {"call_id": call.pk, "speaker": "caller", "text": "Hi"},
        {"call_id": other.pk, "speaker": "agent", "text": "Good morning"},
        {"call_id": call.pk, "speaker": "agent", "text": "How can I help?", "latency": {"ttfa": 1}},
    ]
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stored = services.turns_append(turns)
    assert len(queries) == 2  # the calls' rows with their last seqs, then one INSERT
    # published once committed, in order, each to its own call's group
    assert published == [
        (call.uuid, 2, "Hi"), (other.uuid, 1, "Good morning"), (call.uuid, 3, "How can I help?")
    ]  # fmt: skip
    assert [(t.call_id, t.seq) for t in stored] == [(call.pk, 2), (other.pk, 1), (call.pk, 3)]
    rows = Turn.objects.filter(call=call).values_list("seq", "text", "latency")
    assert list(rows) == [(1, "Hello", {}), (2, "Hi", {}), (3, "How can I help?", {"ttfa": 1})]
    assert services.turn_append.many is services.turns_append


@pytest.mark.django_db
def test_a_turn_for_a_call_that_does_not_exist_fails_the_whole_run_before_any_insert(call):
    with pytest.raises(Call.DoesNotExist), transaction.atomic():
        services.turns_append(
            [
                {"call_id": call.pk, "speaker": "agent", "text": "Hello"},
                {"call_id": call.pk + 1000, "speaker": "agent", "text": "lost"},
            ]
        )
    assert not Turn.objects.exists()
    with pytest.raises(TypeError), transaction.atomic():  # as turn_append(txet=...) would
        services.turns_append([{"call_id": call.pk, "speaker": "agent", "txet": "Hello"}])


@pytest.mark.django_db
def test_stream_token_nonce_is_single_use(call):
    services.stream_grant(call_id=call.pk, nonce="abc")
    assert services.stream_claim(call_uuid=str(call.uuid), nonce="abc", stream_sid="MZ1")
    assert services.stream_claim(call_uuid=str(call.uuid), nonce="abc", stream_sid="MZ2") is None
    assert services.stream_claim(call_uuid=str(call.uuid), nonce="", stream_sid="MZ3") is None
