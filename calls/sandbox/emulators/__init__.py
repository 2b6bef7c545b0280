"""Wire-level emulators of the hosted services (Deepgram, ElevenLabs, OpenAI, Twilio REST)."""
