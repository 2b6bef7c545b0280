"""API tokens expire after API_TOKEN_TTL_HOURS, and each user can rotate or revoke their own."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(token: Token, hours: float) -> None:
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(hours=hours))


def test_a_token_older_than_the_ttl_is_refused(operator, settings):
    settings.API_TOKEN_TTL_HOURS = 24
    token = Token.objects.create(user=operator)
    client = with_token(token.key)
    age(token, 23)
    assert client.get("/api/calls/").status_code == 200
    age(token, 25)
    refused = client.get("/api/calls/")
    assert refused.status_code == 401 and "token expired" in refused.json()["detail"]
    settings.API_TOKEN_TTL_HOURS = 0  # never expire
    assert client.get("/api/calls/").status_code == 200


def test_rotating_gives_a_new_key_and_ends_the_old_one(operator, settings):
    settings.API_TOKEN_TTL_HOURS = 24
    old = Token.objects.create(user=operator).key
    response = with_token(old).post("/api/token/")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old and response.json()["expires"]
    assert with_token(old).get("/api/calls/").status_code == 401
    assert with_token(new).get("/api/calls/").status_code == 200


def test_revoking_ends_the_token(operator):
    key = Token.objects.create(user=operator).key
    assert with_token(key).delete("/api/token/").status_code == 204
    assert with_token(key).get("/api/calls/").status_code == 401
    assert not Token.objects.filter(user=operator).exists()


def test_rotating_needs_a_signed_in_user(anon):
    assert anon.post("/api/token/").status_code == 401


def test_ensure_operator_replaces_an_expired_token(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    settings.API_TOKEN_TTL_HOURS = 24
    call_command("ensure_operator", stdout=io.StringIO())
    first = Token.objects.get(user__username="operator")
    call_command("ensure_operator", stdout=io.StringIO())
    assert Token.objects.get(user__username="operator").key == first.key  # still valid: kept
    age(first, 25)
    call_command("ensure_operator", stdout=io.StringIO())
    renewed = Token.objects.get(user__username="operator")
    assert renewed.key != first.key
    assert (tmp_path / "var" / "operator_token").read_text() == renewed.key
    assert with_token(renewed.key).get("/api/calls/").status_code == 200
