"""The agent's tools: one registry entry each, used by both engines, the session and the personas.

Adding a tool is one entry and its handler (in `builtin.py` or a module imported below), plus
its tests; the chat and realtime engines offer it, the session runs it, a persona can list it:

    @tool("check_order", label="Check an order", where=Where.SESSION,
          description="Look up the caller's order by its number.",
          parameters={"type": "object", "properties": {"order": {"type": "string"}},
                      "required": ["order"]})
    async def check_order(env: SessionEnv, arguments: dict) -> dict:
        return await env.look_up_order(str(arguments.get("order", "")))

A session tool needs what it does on `SessionEnv` (implemented by `CallSession`); a pipeline
tool gets `PipelineEnv` (implemented by each engine). tests/calls/pipeline/test_tools.py adds one.
"""

from calls.pipeline.tools import builtin as builtin
from calls.pipeline.tools.env import PipelineEnv, SessionEnv
from calls.pipeline.tools.registry import (
    REGISTRY,
    ToolSpec,
    Where,
    offered,
    persona_tools,
    tool,
    tool_schemas,
)
from calls.pipeline.tools.runner import ToolRunner, offered_spec, run_in_session

__all__ = [
    "REGISTRY",
    "PipelineEnv",
    "SessionEnv",
    "ToolRunner",
    "ToolSpec",
    "Where",
    "offered",
    "offered_spec",
    "persona_tools",
    "run_in_session",
    "tool",
    "tool_schemas",
]
