"""Fixtures of the call tests: Myra's call to Ann, and the fake phone dialled into it."""

from __future__ import annotations

import pytest

from calls import services
from tests.support.stream import Phone


@pytest.fixture
def call(myra):
    """Myra's call to Ann about the SRE position (greeting "Hi Ann.")."""
    return services.call_create(
        persona=myra, to="+14155550100", variables={"applicant_name": "Ann", "position": "SRE"},
        welcome_message="Hi Ann.",
    )  # fmt: skip


@pytest.fixture
async def dial(call):
    """`phone = await dial()`: a fake phone on the call's media stream; each one dialled is
    closed after the test."""
    phones: list[Phone] = []

    async def _dial() -> Phone:
        phones.append(await Phone.dial(call))
        return phones[-1]

    yield _dial
    for phone in phones:
        await phone.close()
