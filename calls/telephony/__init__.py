"""Twilio: REST client, TwiML, webhooks, stream tokens and the Media Streams consumer."""
