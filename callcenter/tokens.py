"""The signed-in user's own API token: rotate it (`POST /api/token/`) or revoke it (`DELETE`)."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from callcenter.authentication import expires_at

TokenInfo = inline_serializer(
    "TokenInfo",
    {"token": serializers.CharField(), "expires": serializers.DateTimeField(allow_null=True)},
)


class OwnTokenView(APIView):
    """The signed-in user's own API token: rotate it (a new key; the old one stops at once) or
    revoke it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: TokenInfo})
    def post(self, request):
        with transaction.atomic():
            Token.objects.filter(user=request.user).delete()
            token = Token.objects.create(user=request.user)
        return Response({"token": token.key, "expires": expires_at(token)})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
