"""Filters for the call list: status, persona, direction, date range, number and text search."""

from __future__ import annotations

import django_filters
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from calls.models import Call, Direction
from calls.status import CallStatus


class CallFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CallStatus.choices)
    persona = django_filters.CharFilter(field_name="persona__slug")
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte")
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte")
    number = django_filters.CharFilter(
        method="filter_number", help_text="Part of the to/from number."
    )
    q = django_filters.CharFilter(
        method="filter_text", help_text="Text in the transcript, summary or extracted data."
    )

    class Meta:
        model = Call
        fields = ["status", "persona", "direction"]

    def filter_number(self, queryset, name, value):
        digits = "".join(ch for ch in value if ch.isdigit())
        if not digits:
            return queryset.none()
        return queryset.filter(Q(to_number__contains=digits) | Q(from_number__contains=digits))

    def filter_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        matching = (
            Call.objects.annotate(extracted_text=Cast("extracted_data", TextField()))
            .filter(
                Q(turns__text__icontains=value)
                | Q(summary__icontains=value)
                | Q(extracted_text__icontains=value)
            )
            .values("pk")
        )
        return queryset.filter(pk__in=matching)
