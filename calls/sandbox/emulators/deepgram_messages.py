"""The messages Deepgram's listen socket sends: Results (interim and final) and Metadata."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def results(
    text: str,
    start: float,
    end: float,
    *,
    is_final: bool,
    speech_final: bool = False,
    from_finalize: bool = False,
    request_id: str,
    model: str,
) -> dict:
    """A Results message for `text` heard from `start` to `end` (audio seconds), its words
    spread evenly over the span."""
    words = text.split()
    step = (end - start) / max(1, len(words))
    items = [
        {
            "word": w.lower().strip(".,!?"),
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
            "confidence": 0.99,
            "punctuated_word": w,
        }
        for i, w in enumerate(words)
    ]
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(end - start, 3),
        "start": round(start, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {"transcript": text, "confidence": 0.99 if text else 0.0, "words": items}
            ]
        },
        "metadata": {
            "request_id": request_id,
            "model_info": {"name": f"general-{model}", "version": "emulator", "arch": model},
            "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, model)),
        },
    }


def metadata(*, request_id: str, sha256: str, duration: float) -> dict:
    """The Metadata message that ends a stream (after CloseStream)."""
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "duration": duration,
        "channels": 1,
    }
