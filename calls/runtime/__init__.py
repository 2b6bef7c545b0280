"""The composition root of a live call: the Media Streams consumer, the session factory, dialling."""
