"""The console's API client against the live server: config sources and readable errors."""

from __future__ import annotations

import pytest

from ui import api_client
from ui.api_client import ApiClient, Config, FieldErrors, NotFound, ServerDown, Unauthorized


def test_config_prefers_env_then_secrets_then_token_file(monkeypatch, tmp_path):
    token_file = tmp_path / "operator_token"
    token_file.write_text("file-token\n")
    monkeypatch.setattr(api_client, "TOKEN_FILE", token_file)
    monkeypatch.delenv("CALLCENTER_API_URL", raising=False)
    monkeypatch.delenv("CALLCENTER_API_TOKEN", raising=False)
    assert Config.load() == Config("http://127.0.0.1:8000", "file-token")
    secrets = {"CALLCENTER_API_URL": "http://s:1/", "CALLCENTER_API_TOKEN": "secret-token"}
    assert Config.load(secrets) == Config("http://s:1", "secret-token")
    monkeypatch.setenv("CALLCENTER_API_URL", "http://e:2")
    monkeypatch.setenv("CALLCENTER_API_TOKEN", "env-token")
    assert Config.load(secrets) == Config("http://e:2", "env-token")


def test_errors_are_typed_and_readable(api_env, live_server, personas):
    api = ApiClient(Config(live_server.url, api_env))
    assert {p["slug"] for p in api.personas()} == set(personas)

    with pytest.raises(FieldErrors) as bad:
        api.start_call(persona="myra-recruiting", to="4155550100", variables={})
    assert set(bad.value.fields) == {"to"} and "E.164" in bad.value.fields["to"][0]
    with pytest.raises(NotFound):
        api.call("00000000-0000-0000-0000-000000000000")
    with pytest.raises(Unauthorized, match="refused the operator token"):
        ApiClient(Config(live_server.url, "wrong")).personas()
    with pytest.raises(Unauthorized, match="no token configured"):
        ApiClient(Config(live_server.url, "")).personas()
    with pytest.raises(ServerDown, match="is the server running"):
        ApiClient(Config("http://127.0.0.1:9", api_env)).personas()


def test_field_errors_shapes():
    assert api_client.field_errors({"to": ["bad"], "variables": {"x": ["y"]}}) == {
        "to": ["bad"],
        "variables": ["x: y"],
    }
    assert api_client.field_errors(["oops"]) == {"detail": ["oops"]}
    assert str(FieldErrors({"detail": ["no"], "to": ["bad"]})) == "no; to: bad"
