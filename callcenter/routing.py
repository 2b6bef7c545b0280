"""WebSocket routes."""

from django.urls import path

from calls.runtime.consumer import MediaStreamConsumer

websocket_urlpatterns = [
    path("ws/twilio/media/", MediaStreamConsumer.as_asgi()),
]
