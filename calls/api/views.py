"""Call endpoints: list, detail, start, incremental turns/events, live control, recording."""

from __future__ import annotations

import logging

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from calls import selectors, services
from calls.api import serializers as s
from calls.api.filters import CallFilter
from calls.models import Call
from calls.runtime import dial
from calls.telephony import control

log = logging.getLogger(__name__)


class WavRenderer(BaseRenderer):
    """Lets `Accept: audio/wav` through content negotiation; errors still render as JSON."""

    media_type = "audio/wav"
    format = "wav"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


AFTER = OpenApiParameter("after", int, description="Only items after this seq / id (live polling).")


class CallViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.CallSerializer
    filterset_class = CallFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "pk"
    # Reads need calls.view_call (callcenter.permissions.RolePermissions); these need more.
    action_permissions = {
        "create": ("calls.place_call",),
        **dict.fromkeys(["hangup", "transfer", "digits", "say"], ("calls.control_call",)),
        "recording": ("calls.view_call", "calls.download_recording"),
        "destroy": ("calls.view_call", "calls.delete_call"),
    }
    # Request rates (callcenter.throttling; REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).
    throttle_scopes = {
        "create": "calls",
        **dict.fromkeys(["hangup", "transfer", "digits", "say"], "control"),
    }

    def get_queryset(self):
        return selectors.call_list()

    def perform_destroy(self, instance) -> None:
        """The call with its turns, events and recording (services.calls_delete)."""
        services.calls_delete(Call.objects.filter(pk=instance.pk))
        log.info("call %s deleted by %s", instance.uuid, self.request.user)

    @extend_schema(responses=s.CallStatsSerializer)
    @action(detail=False, pagination_class=None)
    def stats(self, request):
        """Figures over the filtered calls (same filters as the list): for dashboards and KPIs."""
        calls = self.filter_queryset(self.get_queryset())
        return Response(selectors.call_stats(calls))

    @extend_schema(request=s.CallCreateSerializer, responses={201: s.CallSerializer})
    def create(self, request):
        data = s.CallCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call = dial.call_start(**data.validated_data)
        return Response(self.get_serializer(call).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[AFTER], responses=s.TurnSerializer(many=True))
    @action(detail=True, pagination_class=None, filterset_class=None)
    def turns(self, request, pk=None):
        after = s.AfterSerializer(data=request.query_params)
        after.is_valid(raise_exception=True)
        turns = selectors.turn_list(call=self.get_object(), after=after.validated_data["after"])
        return Response(s.TurnSerializer(turns, many=True).data)

    @extend_schema(parameters=[AFTER], responses=s.CallEventSerializer(many=True))
    @action(detail=True, pagination_class=None, filterset_class=None)
    def events(self, request, pk=None):
        after = s.AfterSerializer(data=request.query_params)
        after.is_valid(raise_exception=True)
        events = selectors.event_list(call=self.get_object(), after=after.validated_data["after"])
        return Response(s.CallEventSerializer(events, many=True).data)

    # Live control, one convention: 202 Accepted with the call as it is at that moment (the body
    # of GET /api/calls/{id}/). The process holding the call carries the action out; the events
    # feed shows it done. A hang-up goes to the carrier at once: its call is already ended.
    def _accepted(self, call) -> Response:
        call.refresh_from_db()
        return Response(self.get_serializer(call).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: s.CallSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def hangup(self, request, pk=None):
        return self._accepted(control.hang_up(self.get_object()))

    @extend_schema(request=s.TransferSerializer, responses={202: s.CallSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def transfer(self, request, pk=None):
        data = s.TransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call = self.get_object()
        control.transfer(call, **data.validated_data)
        return self._accepted(call)

    @extend_schema(request=s.DigitsSerializer, responses={202: s.CallSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def digits(self, request, pk=None):
        data = s.DigitsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call = self.get_object()
        control.press_digits(call, **data.validated_data)
        return self._accepted(call)

    @extend_schema(request=s.SaySerializer, responses={202: s.CallSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def say(self, request, pk=None):
        data = s.SaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        call = self.get_object()
        control.say(call, **data.validated_data)
        return self._accepted(call)

    @extend_schema(responses={(200, "audio/wav"): bytes})
    @action(detail=True, filterset_class=None, renderer_classes=[JSONRenderer, WavRenderer])
    def recording(self, request, pk=None):
        call = self.get_object()
        if not call.recording:
            raise Http404("no recording for this call")
        log.info("recording of call %s downloaded by %s", call.uuid, request.user)
        return FileResponse(
            call.recording.open("rb"), content_type="audio/wav", filename=f"call-{call.uuid}.wav"
        )
