"""The carrier actions of a live call on Twilio (REST updates with TwiML), for `CallSession`."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from calls.models import Call
from calls.telephony import carrier, policy, tokens, twiml


class TwilioCallActions:
    """Implements `calls.live.actions.CallActions` for one call through the REST API."""

    def __init__(self, call_id: int, twilio_sid: str) -> None:
        self.call_id = call_id
        self.twilio_sid = twilio_sid

    async def hang_up(self) -> None:
        if self.twilio_sid:
            await sync_to_async(carrier.update_call)(self.twilio_sid, status="completed")

    async def transfer(self, number: str) -> None:
        policy.check(number)  # the model's or an operator's choice alike: raises DialRefused
        await sync_to_async(carrier.update_call)(self.twilio_sid, twiml=twiml.transfer(number))

    async def press_digits(self, digits: str) -> None:
        document = await sync_to_async(self._digits_twiml)(digits)
        await sync_to_async(carrier.update_call)(self.twilio_sid, twiml=document)

    def _digits_twiml(self, digits: str) -> str:
        call = Call.objects.get(pk=self.call_id)
        return twiml.press_digits_then_stream(digits, tokens.stream_params(call))
