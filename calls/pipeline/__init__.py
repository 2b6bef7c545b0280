"""Real-time call pipeline: audio helpers and processors; imports nothing from Django."""
