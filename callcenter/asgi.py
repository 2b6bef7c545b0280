"""ASGI entry point: HTTP to Django, WebSockets to the Channels routes."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callcenter.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from callcenter.routing import websocket_urlpatterns  # noqa: E402
from callcenter.static import with_static_files  # noqa: E402
from calls.core import heap, patches  # noqa: E402
from calls.live import warmup  # noqa: E402

patches.check_all()  # a library not at the version its patch was written for stops the start
patches.autobahn_plain_debug_arguments()
warmup.import_backends()
warmup.import_lazy_modules()
if settings.SANDBOX_CARRIER:
    from calls.sandbox.carrier import start_in_process

    start_in_process(port=settings.SANDBOX_CARRIER_PORT)

http_app = with_static_files(django_asgi_app, root=settings.STATIC_ROOT, url=settings.STATIC_URL)
router = ProtocolTypeRouter({"http": http_app, "websocket": URLRouter(websocket_urlpatterns)})
heap.freeze_startup_heap()  # last: everything imported and built by now is there for good


async def application(scope, receive, send):
    """The router, after making sure this loop has warm providers (first request only)."""
    warmup.remember_loop()
    return await router(scope, receive, send)
