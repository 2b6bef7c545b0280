"""Reading an AppTest page: its visible text, for "is it shown" checks."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

TEXT_ELEMENTS = (
    "title", "header", "subheader", "markdown", "caption", "text", "code",
    "error", "warning", "info", "success",
)  # fmt: skip


def texts(at: AppTest, kind: str = "markdown") -> list[str]:
    return [str(el.value) for el in getattr(at, kind)]


def all_text(at: AppTest) -> str:
    """Every text-ish element of the page and the metrics, one per line."""
    parts = [text for kind in TEXT_ELEMENTS for text in texts(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(parts)
