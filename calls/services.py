"""Writes for calls: start, status changes, turns and events; each one atomic and published."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from agents import context as persona_context
from agents import prompts
from agents.models import Persona
from calls import events
from calls.models import Call, CallEvent, Direction, EventType, Turn
from calls.status import TERMINAL, CallStatus, IllegalTransition, can_transition, is_stale

log = logging.getLogger(__name__)
# The live writes (turns, events, outcomes) run many to a transaction in calls.live.persister,
# and open no savepoint there: a savepoint and its release are two statements more per write, each
# a GIL round trip for the writer thread. One that fails rolls the batch back, and the persister
# writes the batch again one write at a time, each in a transaction of its own. The cost: called
# inside someone else's transaction, a failure (even one raised before any SQL) leaves that whole
# transaction to roll back; wrap the call in `transaction.atomic()` to contain it.
atomic_write = transaction.atomic(savepoint=False)


def normalize_number(value: str, *, field: str = "to") -> str:
    """E.164 form of `value`; a ValidationError naming `field` if it is not a valid number."""
    raw = (value or "").strip()
    if not raw.startswith("+"):
        raise ValidationError({field: ["must be in E.164 format, e.g. +14155550100"]})
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError({field: [f"not a phone number: {exc}"]}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError({field: [f"{raw} is not a valid phone number"]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_variables(
    persona: Persona, variables: Mapping[str, object], *, required: bool = True
) -> dict[str, str]:
    if not isinstance(variables, Mapping):
        raise ValidationError({"variables": ["must be an object of name -> value"]})
    if len(variables) > prompts.MAX_VARIABLES:
        raise ValidationError({"variables": [f"at most {prompts.MAX_VARIABLES} variables"]})
    for name, value in variables.items():
        if len(str(name)) > prompts.MAX_VARIABLE_NAME_CHARS:
            raise ValidationError(
                {"variables": [f"names are at most {prompts.MAX_VARIABLE_NAME_CHARS} characters"]}
            )
        if len(str(value)) > prompts.MAX_VARIABLE_CHARS:
            raise ValidationError(
                {"variables": [f"{name}: at most {prompts.MAX_VARIABLE_CHARS} characters"]}
            )
    missing = [n for n in persona.required_variables if str(variables.get(n, "")).strip() == ""]
    if missing and required:
        raise ValidationError(
            {"variables": [f"missing required variable(s): {', '.join(missing)}"]}
        )
    clean = {str(k): str(v) for k, v in variables.items()}
    for name in persona.variable_names:
        clean.setdefault(name, "")
    try:
        persona_context.render_prompt(persona, clean)
        persona_context.render_greeting(persona, clean)
    except prompts.TemplateError as exc:
        raise ValidationError({"variables": [str(exc)]}) from None
    return clean


@transaction.atomic
def call_create(
    *,
    persona: Persona,
    to: str,
    variables: Mapping[str, object] | None = None,
    welcome_message: str = "",
    from_number: str = "",
    direction: str = Direction.OUTBOUND,
    twilio_sid: str = "",
    status: str = CallStatus.QUEUED,
    require_variables: bool = True,
) -> Call:
    """Validate and store a call; placing it on the carrier is `runtime.dial.call_start`'s job."""
    to_e164 = normalize_number(to, field="to")
    from_e164 = normalize_number(from_number, field="from") if from_number else ""
    clean_vars = _check_variables(persona, variables or {}, required=require_variables)
    call = Call.objects.create(
        persona=persona,
        to_number=to_e164,
        from_number=from_e164,
        variables=clean_vars,
        welcome_message=welcome_message or "",
        direction=direction,
        twilio_sid=twilio_sid,
        status=status,
    )
    _event(call, EventType.STATUS, {"status": status})
    return call


def _event(call: Call, type_: str, payload: Mapping[str, object]) -> CallEvent:
    event = CallEvent.objects.create(call=call, type=type_, payload=dict(payload))
    transaction.on_commit(lambda: events.publish_event(call.uuid, event))
    return event


@atomic_write
def event_record(*, call_id: int, type: str, payload: Mapping[str, object]) -> CallEvent:
    call = Call.objects.get(pk=call_id)
    return _event(call, type, payload)


@transaction.atomic
def call_set_status(
    *,
    call_id: int,
    status: str,
    answered_by: str = "",
    duration: int | None = None,
    reason: str = "",
) -> tuple[Call, bool]:
    """Move the call to `status`. Late/repeated statuses are ignored (returns changed=False);
    an illegal move raises IllegalTransition."""
    call = Call.objects.select_for_update().get(pk=call_id)
    if answered_by and not call.answered_by:
        call.answered_by = answered_by
    if duration is not None:
        call.duration = duration
    if is_stale(call.status, status):
        call.save(update_fields=["answered_by", "duration"])
        return call, False
    if not can_transition(call.status, status):
        raise IllegalTransition(call.status, status)
    now = timezone.now()
    call.status = status
    if status == CallStatus.IN_PROGRESS and not call.answered_at:
        call.answered_at = now
    if status in TERMINAL:
        call.ended_at = call.ended_at or now
        if reason and not call.end_reason:  # the first reason given wins (see control.hang_up)
            call.end_reason = reason
        if call.duration is None and call.answered_at:
            call.duration = int((call.ended_at - call.answered_at).total_seconds())
    call.save()
    payload: dict[str, object] = {"status": status}
    if answered_by:
        payload["answered_by"] = answered_by
    if reason:
        payload["reason"] = reason
    _event(call, EventType.STATUS, payload)
    return call, True


def call_end(*, call_id: int, reason: str, failed: bool = False) -> Call:
    """End a call from our side: completed once answered, canceled before. If it has already
    ended (the carrier's `completed` callback, which carries no reason, often arrives first: we
    hung up through its API), only `reason` is kept, when none was recorded. Decided under the
    row lock, so a callback committing meanwhile cannot make the reason go missing."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        if call.status in TERMINAL:
            if reason and not call.end_reason:
                call.end_reason = reason[:200]
                call.save(update_fields=["end_reason"])
            return call
        if failed:
            status = CallStatus.FAILED
        elif call.status == CallStatus.IN_PROGRESS:
            status = CallStatus.COMPLETED
        else:
            status = CallStatus.CANCELED
        call, _ = call_set_status(call_id=call_id, status=status, reason=reason)
    return call


def calls_delete(calls: QuerySet[Call]) -> int:
    """Delete calls with their turns, events and recordings; a recording file goes only once the
    rows are gone (a delete that rolls back keeps its audio). Returns how many calls."""
    with transaction.atomic():
        files = [c.recording.name for c in calls.exclude(recording="").only("recording")]
        count = calls.count()
        calls.delete()
        transaction.on_commit(lambda: _delete_files(files))
    return count


def _delete_files(names: Sequence[str]) -> None:
    storage = Call._meta.get_field("recording").storage
    for name in names:
        storage.delete(name)


@atomic_write
def call_update_outcome(*, call_id: int, **fields: object) -> None:
    """Set result fields (stage, summary, extracted data, recording name, twilio sid...)."""
    allowed = {
        "current_stage",
        "summary",
        "extracted_data",
        "recording",
        "twilio_sid",
        "end_reason",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not an outcome field: {sorted(unknown)}")
    Call.objects.filter(pk=call_id).update(**fields)
    if "current_stage" in fields:
        _event(Call.objects.get(pk=call_id), EventType.STAGE, {"stage": fields["current_stage"]})


def turn_append(
    *,
    call_id: int,
    speaker: str,
    text: str,
    heard_text: str = "",
    interrupted: bool = False,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    latency: Mapping[str, object] | None = None,
) -> Turn:
    """Store one finished turn with the next sequence number, then publish it."""
    [stored] = turns_append(
        [
            {
                "call_id": call_id, "speaker": speaker, "text": text, "heard_text": heard_text,
                "interrupted": interrupted, "started_at": started_at, "ended_at": ended_at,
                "latency": latency,
            }
        ]
    )  # fmt: skip
    return stored


@atomic_write
def turns_append(turns: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """`turn_append` for several turns (of one call or many; each a mapping of its keywords), in
    their order: two statements in all. The live calls' writer stores the turns that finished
    together this way. An unknown keyword raises TypeError, as it does for `turn_append`."""
    # The calls' rows locked (in one order, so two writers never wait on each other) against a
    # concurrent append, with their uuids to publish to and their last seqs; no Call instance.
    last_seq = Turn.objects.filter(call=OuterRef("pk")).order_by("-seq").values("seq")[:1]
    found = (
        Call.objects.select_for_update()
        .filter(pk__in={t["call_id"] for t in turns})
        .order_by("pk")
        .values_list("pk", "uuid", Subquery(last_seq))
    )
    uuids: dict[int, UUID] = {}
    seqs: dict[int, int] = {}
    for pk, call_uuid, last in found:
        uuids[pk], seqs[pk] = call_uuid, last or 0
    rows: list[Turn] = []
    for t in turns:
        call_id = t["call_id"]
        if call_id not in seqs:
            raise Call.DoesNotExist(f"no call {call_id} to append a turn to")
        seqs[call_id] += 1
        fields = {
            **t, "ended_at": t.get("ended_at") or timezone.now(),
            "latency": dict(t.get("latency") or {}),
        }  # fmt: skip
        rows.append(Turn(seq=seqs[call_id], **fields))  # an unknown key raises TypeError
    Turn.objects.bulk_create(rows)

    def publish() -> None:
        for turn in rows:
            events.publish_turn(uuids[turn.call_id], turn)

    transaction.on_commit(publish)
    return rows


# The live calls' writer (calls.live.persister) stores a run of turns with one call of this.
turn_append.many = turns_append  # type: ignore[attr-defined]


@transaction.atomic
def stream_grant(*, call_id: int, nonce: str) -> None:
    """Make `nonce` the one stream token nonce this call accepts (replacing any earlier one)."""
    Call.objects.filter(pk=call_id).update(stream_nonce=nonce)


@transaction.atomic
def stream_claim(
    *, call_uuid: str, nonce: str, stream_sid: str, twilio_sid: str = ""
) -> Call | None:
    """Consume the stream token nonce atomically: the call on first use, None if used, unknown,
    or the stream's `twilio_sid` is not the call's (a token lifted from another call)."""
    claimable = Call.objects.filter(uuid=call_uuid, stream_nonce=nonce).exclude(stream_nonce="")
    if twilio_sid:
        claimable = claimable.filter(Q(twilio_sid="") | Q(twilio_sid=twilio_sid))
    claimed = claimable.exclude(status__in=TERMINAL).update(stream_nonce="", stream_sid=stream_sid)
    if not claimed:
        return None
    call = Call.objects.select_related("persona").get(uuid=call_uuid)
    if twilio_sid and not call.twilio_sid:
        call.twilio_sid = twilio_sid
        call.save(update_fields=["twilio_sid"])
    _event(call, EventType.STREAM, {"stream_sid": stream_sid, "event": "start"})
    return call
