"""What the server loads before its first request (calls/live/warmup.py, callcenter/asgi.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter: in the test process every module is imported already.
PROBE = """
import gc, sys
before = set(sys.modules)
import callcenter.asgi
from calls.live.warmup import LAZY_MODULES
names = ["calls.api.views", "agents.api.views", "rest_framework.views", *LAZY_MODULES]
print("missing", [n for n in names if n not in sys.modules])
tracked = {id(o) for o in gc.get_objects()}  # frozen objects are not listed
print("unfrozen", [n for n in names if n in sys.modules and id(vars(sys.modules[n])) in tracked])
"""


@pytest.mark.slow
def test_the_urlconf_and_lazy_modules_load_before_the_heap_is_frozen(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "callcenter.settings",
        "SANDBOX_CARRIER": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "missing []" in out.stdout and "unfrozen []" in out.stdout, out.stdout
