"""Where a suspended task is: its whole await chain, into the tasks it waits on (for logs)."""

from __future__ import annotations

import asyncio
from typing import Any

MAX_DEPTH = 60


def _frames(coro: Any) -> list[str]:
    """The frames of a suspended coroutine/generator chain, outermost first."""
    lines: list[str] = []
    while coro is not None and len(lines) < MAX_DEPTH:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        frame = frame or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        code = frame.f_code
        lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        nxt = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        coro = nxt or getattr(coro, "ag_await", None)
    return lines


def await_chain(task: asyncio.Task, indent: str = "  ", _depth: int = 0) -> str:
    """Every frame the task is suspended in, outermost first; a gather or another task it awaits
    is followed into its own chain."""
    lines = _frames(task.get_coro())
    # The future the task is blocked on (asyncio keeps it on the task, C and Python versions).
    future = getattr(task, "_fut_waiter", None)
    out = [f"{indent}{line}" for line in lines]
    children: list[asyncio.Future] = []
    if future is not None:
        children = list(getattr(future, "_children", None) or [future])
        out.append(f"{indent}awaiting {type(future).__name__}")
    if _depth < 3:
        for child in children:
            if isinstance(child, asyncio.Task) and child is not task and not child.done():
                out.append(f"{indent}task {child.get_name()}:")
                out.append(await_chain(child, indent + "  ", _depth + 1))
    return "\n".join(out)
