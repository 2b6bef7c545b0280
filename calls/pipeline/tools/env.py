"""What a tool handler may use: the engine's side (pipeline tools) or the session's (session tools)."""

from __future__ import annotations

from typing import Protocol

from calls.pipeline.context import CallContext


class PipelineEnv(Protocol):
    """Implemented by each engine (calls.pipeline.llm, calls.pipeline.realtime)."""

    @property
    def ctx(self) -> CallContext: ...

    async def stage_changed(self, stage: str) -> None:
        """The conversation moved to `stage` (already set on `ctx.conversation`): tell the
        session and, where the engine holds its own prompt, the model."""
        ...


class SessionEnv(Protocol):
    """Implemented by the call session (calls.live.session.CallSession): the call's actions.

    Each returns the result the model sees; a refusal is `{"ok": False, "error": ...}` or an
    exception (which becomes one)."""

    @property
    def ctx(self) -> CallContext: ...

    async def hang_up(self, reason: str) -> None: ...

    async def transfer(self, number: str) -> dict:
        """Connect the caller to `number` (E.164, never chosen by the model) and leave the call."""
        ...

    async def press_digits(self, digits: str) -> dict: ...

    async def ask_supervisor(self, question: str) -> dict: ...
