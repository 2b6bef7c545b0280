"""The admin login resists password guessing (django-axes): after AXES_FAILURE_LIMIT failures a
username is locked out from that address, even with the right password."""

import pytest
from axes.models import AccessAttempt

LOGIN = "/admin/login/?next=/admin/"


@pytest.mark.django_db
def test_repeated_failures_lock_the_admin_login(client, operator, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        response = client.post(LOGIN, {"username": "op", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(LOGIN, {"username": "op", "password": "wrong"}).status_code == 429
    locked = client.post(LOGIN, {"username": "op", "password": "pw-123456"})
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="op").failures_since_start >= 3


@pytest.mark.django_db
def test_a_success_before_the_limit_clears_the_failures(client, operator):
    client.post(LOGIN, {"username": "op", "password": "wrong"})
    response = client.post(LOGIN, {"username": "op", "password": "pw-123456"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert not AccessAttempt.objects.filter(username="op").exists()
