"""Whether the local speech engines (hibari TTS, faster-whisper STT, WebRTC VAD) are installed."""

import importlib.util

LOCAL_SPEECH = all(
    importlib.util.find_spec(m) for m in ("hibari", "faster_whisper", "ctranslate2", "webrtcvad")
)
