"""The dialling policy: which numbers the product may call, whoever asks; checked before any carrier request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from phonenumbers import PhoneNumberType

from calls import selectors

# Number types that bill the caller at rates set by the callee's network (toll fraud), by rule name.
REFUSED_TYPES: dict[int, tuple[str, str]] = {
    PhoneNumberType.PREMIUM_RATE: ("premium_rate", "premium-rate numbers are never dialled"),
    PhoneNumberType.SHARED_COST: ("shared_cost", "shared-cost numbers are never dialled"),
    PhoneNumberType.UAN: ("uan", "universal access numbers (UAN) are never dialled"),
    PhoneNumberType.PERSONAL_NUMBER: ("personal_number", "personal numbers are never dialled"),
}
# Global (non-geographic) codes of satellite phones and international networks: Inmarsat (+870),
# the Global Mobile Satellite System (+881: Iridium, Globalstar, Thuraya...), +882 and +883.
SATELLITE_CODES = frozenset({870, 881, 882, 883})
# A call still "active" after this long had its end never reported (Twilio ends any call at four
# hours): it no longer counts against MAX_ACTIVE_CALLS, so it cannot block new calls forever.
ACTIVE_HORIZON = timedelta(hours=4)
DAY = timedelta(days=1)
ACTIVE_RETRY_AFTER_S = 30


@dataclass(frozen=True)
class Refusal:
    """Why a number may not be dialled: the rule's name and a sentence naming it."""

    rule: str
    reason: str

    def __str__(self) -> str:
        return f"refused by the dialling policy ({self.rule}): {self.reason}"


class DialRefused(ValidationError):
    """A number the policy refuses, as a field error (a 400 from the API). Its text is the
    refusal itself, so a tool result or a log line reads plainly."""

    def __init__(self, refusal: Refusal, *, field: str = "to") -> None:
        super().__init__({field: [str(refusal)]})
        self.refusal = refusal

    def __str__(self) -> str:
        return str(self.refusal)


def _deny_list() -> list[str]:
    """DIAL_DENY_LIST as E.164 prefixes: "+1 (900)" and "1900" both mean +1900."""
    digits = ("".join(ch for ch in entry if ch.isdigit()) for entry in settings.DIAL_DENY_LIST)
    return [f"+{d}" for d in digits if d]


def refusal(number: str) -> Refusal | None:
    """The rule that forbids dialling `number` (E.164), or None when the policy allows it."""
    raw = (number or "").strip()
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return Refusal("invalid", f"{raw!r} is not a valid phone number in E.164 form")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    for entry in _deny_list():
        if e164.startswith(entry):
            return Refusal("deny_list", f"{e164} matches {entry} on DIAL_DENY_LIST")
    if parsed.country_code in SATELLITE_CODES:
        return Refusal("satellite", f"{e164} is a satellite or international-network number")
    rule = REFUSED_TYPES.get(phonenumbers.number_type(parsed))
    if rule is not None:
        return Refusal(rule[0], f"{e164}: {rule[1]}")
    region = phonenumbers.region_code_for_number(parsed) or "unknown"
    allowed = settings.DIAL_ALLOWED_COUNTRIES
    if region not in allowed:
        listed = ", ".join(allowed) or "none"
        return Refusal("country", f"{e164} is in {region}; DIAL_ALLOWED_COUNTRIES allows {listed}")
    return None


def check(number: str, *, field: str = "to") -> str:
    """Return `number` if the policy allows dialling it; else raise DialRefused naming the rule."""
    found = refusal(number)
    if found is not None:
        raise DialRefused(found, field=field)
    return number


class LimitReached(Exception):
    """Too many calls now (MAX_ACTIVE_CALLS) or to one number today: a 429 with Retry-After."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check_capacity(number: str) -> None:
    """Raise LimitReached when placing a call to `number` (E.164) now would exceed
    MAX_ACTIVE_CALLS or MAX_CALLS_PER_DESTINATION_PER_DAY (a rolling 24 hours); 0 = no cap."""
    now = timezone.now()
    cap = settings.MAX_ACTIVE_CALLS
    if cap and selectors.active_call_count(since=now - ACTIVE_HORIZON) >= cap:
        raise LimitReached(
            f"{cap} calls are active, the most MAX_ACTIVE_CALLS allows; try again shortly",
            retry_after=ACTIVE_RETRY_AFTER_S,
        )
    per_day = settings.MAX_CALLS_PER_DESTINATION_PER_DAY
    if per_day:
        placed = selectors.placed_to(number=number, since=now - DAY)
        if len(placed) >= per_day:
            frees_at = placed[per_day - 1] + DAY  # when the call that frees a place turns 24 h old
            raise LimitReached(
                f"{number} was called {len(placed)} times in the last 24 hours; "
                f"MAX_CALLS_PER_DESTINATION_PER_DAY is {per_day}",
                retry_after=max(1, int((frees_at - now).total_seconds()) + 1),
            )
