"""In-process consumer tests use the in-memory channel layer even when REDIS_URL is set."""

import pytest


@pytest.fixture(autouse=True)
def _in_memory_layer(in_memory_channel_layer):
    yield
