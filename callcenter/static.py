"""Static files (admin, DRF, Swagger UI) served by the ASGI application itself, under any server."""

from __future__ import annotations

import logging
from pathlib import Path

from servestatic import ServeStaticASGI

log = logging.getLogger(__name__)


def with_static_files(app, *, root: Path, url: str):
    """`app` behind ServeStatic: GET/HEAD under `url` answered from `root` (what `collectstatic`
    gathered, with caching headers and gzip/brotli variants when present); everything else,
    WebSockets included, goes to `app` untouched. The file list is read once, here."""
    if not root.is_dir():
        log.warning(
            "no static files at %s: the admin and the API docs have no styling; "
            "run `python manage.py collectstatic --noinput` (`make setup` does)",
            root,
        )
        return app
    return ServeStaticASGI(app, root=root, prefix=url)
