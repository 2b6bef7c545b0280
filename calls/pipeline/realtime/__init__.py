"""Speech-to-speech on the OpenAI Realtime API, in place of VAD, STT, turn-taking, LLM and TTS.

AudioIn     -> input_audio_buffer.append (the caller's mu-law, unchanged)
Say         -> a response that speaks the text            ToolResult -> function_call_output
caller speech over the agent, or Interrupt -> response.cancel, Interrupt (the playout clears and
               records the heard text), conversation.item.truncate(audio_end_ms = ms played)
server events -> CallerSpeechStarted/Stopped, TurnRecord(caller), ReplyStarted, SpeechChunk*,
               ReplyDone (one reply per response), ToolRequest, StageChanged, EventRecord
a dropped socket -> EventRecord, then a fresh session whose instructions carry the history

Modules: `processor` (events -> frames, replies), `connection` (connect, replay, reconnect),
`segments` (audio paired with its words), `bargein` (truncation), `tools`, `says` (spoken lines),
`client` (the session's interface).
"""

from calls.pipeline.realtime.client import RealtimeClient, RealtimeClientFactory, realtime_tools
from calls.pipeline.realtime.processor import RealtimeProcessor
from calls.pipeline.realtime.segments import take_words

__all__ = [
    "RealtimeClient",
    "RealtimeClientFactory",
    "RealtimeProcessor",
    "realtime_tools",
    "take_words",
]
