"""Reads for calls, turns and events."""

from __future__ import annotations

from datetime import datetime
from statistics import median

from django.db.models import Avg, Count, Q, QuerySet

from calls.models import Call, CallEvent, Direction, Turn
from calls.status import ACTIVE, CallStatus

# Calls whose answer is not known yet.
UNDECIDED = (CallStatus.QUEUED, CallStatus.RINGING)


def call_list() -> QuerySet[Call]:
    return Call.objects.select_related("persona").order_by("-created_at", "-id")


def active_call_count(*, since: datetime) -> int:
    """Calls (either direction) created since `since` that have not ended."""
    return Call.objects.filter(status__in=ACTIVE, created_at__gte=since).count()


def placed_to(*, number: str, since: datetime) -> list[datetime]:
    """When each outbound call to `number` (E.164) since `since` was created, newest first."""
    calls = Call.objects.filter(
        direction=Direction.OUTBOUND, to_number=number, created_at__gte=since
    )
    return list(calls.order_by("-created_at").values_list("created_at", flat=True))


def turn_list(*, call: Call, after: int = 0) -> QuerySet[Turn]:
    return Turn.objects.filter(call=call, seq__gt=after).order_by("seq")


def event_list(*, call: Call, after: int = 0) -> QuerySet[CallEvent]:
    return CallEvent.objects.filter(call=call, id__gt=after).order_by("id")


def call_stats(calls: QuerySet[Call]) -> dict[str, float | int | None]:
    """The KPIs over `calls` (already filtered); the console shows these figures as they are.

    `answered_rate` is answered / decided: calls still queued or ringing are not counted until
    they are answered or not. `median_voice_to_voice_ms` is over the agent turns that carry one."""
    agg = calls.aggregate(
        total=Count("id"),
        decided=Count("id", filter=~Q(status__in=UNDECIDED)),
        answered=Count("id", filter=Q(answered_at__isnull=False)),
        avg_duration=Avg("duration"),
    )
    figures = [
        t["voice_to_voice_ms"]
        for t in Turn.objects.filter(call__in=calls.values("pk"), speaker="agent")
        .exclude(latency={})
        .values_list("latency", flat=True)
        if isinstance(t, dict) and isinstance(t.get("voice_to_voice_ms"), int | float)
    ]
    decided = agg["decided"]
    return {
        "calls": agg["total"],
        "decided": decided,
        "answered": agg["answered"],
        "answered_rate": round(agg["answered"] / decided, 3) if decided else None,
        "avg_duration": round(agg["avg_duration"], 1) if agg["avg_duration"] is not None else None,
        "median_voice_to_voice_ms": round(median(figures), 1) if figures else None,
        "turns_measured": len(figures),
    }
