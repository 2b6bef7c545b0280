"""Typed client for the call center API: one requests.Session, timeouts, readable errors."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import requests

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_FILE = Path(__file__).resolve().parent.parent / "var" / "operator_token"
TIMEOUT = (3.05, 15)  # (connect, read) seconds; the console must never hang on a dead server
ACTIVE_STATUSES = ("queued", "ringing", "in-progress")
TERMINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
ALL_STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES


class Variable(TypedDict, total=False):
    name: str
    example: str
    description: str
    required: bool


class Persona(TypedDict, total=False):
    id: int
    slug: str
    name: str
    agent_name: str
    role: str
    company: str
    language: str
    system_prompt: str
    first_message: str
    goodbye: str
    variables: list[Variable]
    required_variables: list[str]
    stages: list[dict[str, str]]
    tools: list[str]
    transfer_number: str
    transfer_destinations: list[dict[str, str]]
    engine: str
    qa_entries: list[dict[str, str]]
    prompt_preview: str


class Call(TypedDict, total=False):
    id: str
    twilio_sid: str
    direction: str
    from_number: str
    to_number: str
    persona: str
    persona_name: str
    variables: dict[str, str]
    welcome_message: str
    status: str
    answered_by: str
    created_at: str
    answered_at: str | None
    ended_at: str | None
    duration: int | None
    end_reason: str
    recording_url: str | None
    extracted_data: dict[str, Any]
    summary: str
    current_stage: str


class Turn(TypedDict, total=False):
    seq: int
    speaker: str
    text: str
    heard_text: str
    interrupted: bool
    started_at: str | None
    ended_at: str | None
    latency: dict[str, Any]


class Event(TypedDict, total=False):
    id: int
    type: str
    payload: dict[str, Any]
    created_at: str


class Page(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Call]


class CallStats(TypedDict):
    """`GET /api/calls/stats/`: the KPIs, defined once, by the server."""

    calls: int
    decided: int
    answered: int
    answered_rate: float | None
    avg_duration: float | None
    median_voice_to_voice_ms: float | None
    turns_measured: int


class ChatReply(TypedDict, total=False):
    reply: str
    tool_calls: list[dict[str, Any]]


class ApiError(Exception):
    """Any failure talking to the API; `str()` is fit to show an operator."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerDown(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class FieldErrors(ApiError):
    """A 400: `fields` maps each field (or "detail"/"non_field_errors") to its messages."""

    def __init__(self, fields: dict[str, list[str]], *, status: int = 400) -> None:
        self.fields = fields
        super().__init__(_join(fields), status=status)

    def pop(self, field: str) -> list[str]:
        return self.fields.pop(field, [])


def _join(fields: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(
        ", ".join(msgs) if name in ("detail", "non_field_errors") else f"{name}: {', '.join(msgs)}"
        for name, msgs in fields.items()
    )


def _as_messages(value: object) -> list[str]:
    if isinstance(value, list):
        return [m for v in value for m in _as_messages(v)]
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _as_messages(v)]
    return [str(value)]


def field_errors(body: object) -> dict[str, list[str]]:
    """DRF's 400 body as {field: [messages]}; anything else under "detail"."""
    if isinstance(body, dict):
        return {str(k): _as_messages(v) for k, v in body.items()}
    if isinstance(body, list):
        return {"detail": _as_messages(body)}
    return {"detail": [str(body)]}


@dataclass(frozen=True)
class Config:
    base_url: str
    token: str

    @classmethod
    def load(cls, secrets: Mapping[str, Any] | None = None) -> Config:
        """Environment first, then Streamlit secrets, then the token file `make run` writes."""
        secrets = secrets or {}
        url = os.environ.get("CALLCENTER_API_URL") or secrets.get("CALLCENTER_API_URL")
        token = os.environ.get("CALLCENTER_API_TOKEN") or secrets.get("CALLCENTER_API_TOKEN")
        if not token and TOKEN_FILE.is_file():
            token = TOKEN_FILE.read_text().strip()
        return cls(
            base_url=str(url or DEFAULT_URL).strip().rstrip("/"), token=str(token or "").strip()
        )


class ApiClient:
    def __init__(self, config: Config, *, timeout: tuple[float, float] = TIMEOUT) -> None:
        self.config = config
        self.base_url = config.base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if config.token:
            self.session.headers["Authorization"] = f"Token {config.token}"

    # transport

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", timeout=self.timeout, **kw
            )
        except requests.Timeout:
            raise ServerDown(f"the API at {self.base_url} did not answer in time") from None
        except requests.ConnectionError:
            raise ServerDown(
                f"cannot reach the API at {self.base_url}: is the server running?"
            ) from None
        except requests.RequestException as exc:  # e.g. a malformed URL or token
            raise ApiError(f"cannot send the request to {self.base_url}: {exc}") from None
        if response.status_code < 400:
            return response
        body = _body(response)
        if response.status_code in (401, 403):
            hint = "" if self.config.token else " (no token configured)"
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            raise Unauthorized(
                f"the API refused the operator token{hint}: {detail}".rstrip(": "),
                status=response.status_code,
            )
        if response.status_code == 404:
            raise NotFound(f"not found: {method} {path}", status=404)
        if response.status_code == 400:
            raise FieldErrors(field_errors(body))
        detail = field_errors(body) if body else {"detail": [response.reason or "error"]}
        raise ApiError(
            f"the API answered {response.status_code}: {_join(detail)}",
            status=response.status_code,
        )

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._request(method, path, **kw)
        return response.json() if response.content else None

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        """Every item of a paginated list, following `page` until there is no `next`."""
        page = 1
        while True:
            data = self._json(
                "GET", path, params={**params, **({"page": page} if page > 1 else {})}
            )
            if not isinstance(data, dict):  # an unpaginated list
                yield from data
                return
            yield from data["results"]
            if not data.get("next"):
                return
            page += 1

    # personas

    def personas(self) -> list[Persona]:
        return list(self._pages("/api/personas/", {}))

    def persona(self, slug: str) -> Persona:
        return self._json("GET", f"/api/personas/{slug}/")

    def chat(
        self, slug: str, messages: Sequence[Mapping[str, str]], variables: Mapping[str, str]
    ) -> ChatReply:
        body = {"messages": list(messages), "variables": dict(variables)}
        return self._json("POST", f"/api/personas/{slug}/chat/", json=body)

    def admin_url(self, persona_id: int) -> str:
        return f"{self.base_url}/admin/agents/persona/{persona_id}/change/"

    # calls

    def calls(self, filters: Mapping[str, Any] | None = None, *, page: int = 1) -> Page:
        params = _clean(filters)
        if page > 1:
            params["page"] = page
        return self._json("GET", "/api/calls/", params=params)

    def iter_calls(self, filters: Mapping[str, Any] | None = None) -> Iterator[Call]:
        """Every call matching `filters`, across all pages."""
        return self._pages("/api/calls/", _clean(filters))

    def call_stats(self, filters: Mapping[str, Any] | None = None) -> CallStats:
        """The KPIs over the calls `filters` select (the same filters as `calls`)."""
        return self._json("GET", "/api/calls/stats/", params=_clean(filters))

    def call(self, call_id: str) -> Call:
        return self._json("GET", f"/api/calls/{call_id}/")

    def start_call(
        self,
        *,
        persona: str,
        to: str,
        variables: Mapping[str, str],
        welcome_message: str = "",
    ) -> Call:
        body: dict[str, Any] = {"persona": persona, "to": to, "variables": dict(variables)}
        if welcome_message:
            body["welcome_message"] = welcome_message
        return self._json("POST", "/api/calls/", json=body)

    def turns(self, call_id: str, *, after: int = 0) -> list[Turn]:
        return self._json("GET", f"/api/calls/{call_id}/turns/", params={"after": after})

    def events(self, call_id: str, *, after: int = 0) -> list[Event]:
        return self._json("GET", f"/api/calls/{call_id}/events/", params={"after": after})

    def hangup(self, call_id: str) -> Call:
        return self._json("POST", f"/api/calls/{call_id}/hangup/")

    # Live controls answer 202: the request is queued for the process holding the call.

    def transfer(self, call_id: str, to: str) -> int:
        return self._request("POST", f"/api/calls/{call_id}/transfer/", json={"to": to}).status_code

    def press_digits(self, call_id: str, digits: str) -> int:
        body = {"digits": digits}
        return self._request("POST", f"/api/calls/{call_id}/digits/", json=body).status_code

    def say(self, call_id: str, text: str) -> int:
        return self._request("POST", f"/api/calls/{call_id}/say/", json={"text": text}).status_code

    def recording(self, url: str) -> bytes:
        """The WAV bytes behind a call's `recording_url`, fetched from the configured server."""
        # Only the path is used: the token never goes to a host other than CALLCENTER_API_URL,
        # whatever host the server (maybe behind a proxy) put in the URL.
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # The file comes as audio/wav whatever is accepted; with */* an error comes labelled
        # application/json (asked for audio/wav, the API labels its JSON error audio/wav).
        return self._request("GET", path, headers={"Accept": "*/*"}).content


def _clean(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (filters or {}).items() if v not in (None, "", [], ())}


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text.strip()[:300]
