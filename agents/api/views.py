"""Persona endpoints: thin, validation and writes live in services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agents import playground, selectors, services
from agents.api.serializers import PersonaSerializer


class ChatSerializer(serializers.Serializer):
    messages = serializers.ListField(child=serializers.DictField(), max_length=100)
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)


class ChatReplySerializer(serializers.Serializer):
    reply = serializers.CharField()
    tool_calls = serializers.ListField(child=serializers.DictField())


class PersonaViewSet(viewsets.ModelViewSet):
    serializer_class = PersonaSerializer
    lookup_field = "slug"
    queryset = selectors.persona_list()
    # Reads and writes need the persona's view/add/change/delete permissions; the playground:
    action_permissions = {"chat": ("agents.view_persona", "agents.chat_persona")}
    throttle_scopes = {"chat": "playground"}  # each reply is an LLM request

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        persona = services.persona_create(**serializer.validated_data)
        return Response(self.get_serializer(persona).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        persona = self.get_object()
        serializer = self.get_serializer(persona, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        persona = services.persona_update(persona=persona, **serializer.validated_data)
        return Response(self.get_serializer(selectors.persona_get(slug=persona.slug)).data)

    def destroy(self, request, *args, **kwargs):
        services.persona_delete(persona=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ChatSerializer, responses=ChatReplySerializer)
    @action(detail=True, methods=["post"])
    def chat(self, request, slug=None):
        """The persona's next reply to a text conversation (the console's playground)."""
        data = ChatSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reply = playground.persona_chat(
            persona=self.get_object(),
            messages=data.validated_data["messages"],
            variables=data.validated_data.get("variables", {}),
        )
        return Response(reply)
