"""In-process consumer tests use the in-memory channel layer even when REDIS_URL is set (the
Redis layer is exercised across real processes in test_cross_process.py)."""

import pytest


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
