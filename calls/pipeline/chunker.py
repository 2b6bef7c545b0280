"""Splits streamed LLM text into speakable pieces: the first at a clause, the rest at sentences.

    "Sure, I can help. The range is" -> "Sure, I can help." + (pending) "The range is"

The first piece goes out at the first clause boundary (comma, colon, dash) once it has a few
words, so speech starts early; later pieces wait for sentence ends, so prosody stays natural.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s|\s-\s")
# Abbreviations whose period does not end a sentence.
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|e\.g|i\.e|approx)\.$", re.IGNORECASE)
# "No." is an abbreviation only before a number ("No. 5"); "Oh no. Sorry" ends a sentence.
_NUMBER_ABBREV = re.compile(r"\b[Nn]o\.$")


class TextChunker:
    def __init__(self, *, first_clause_words: int = 3, max_chars: int = 240) -> None:
        self.first_clause_words = first_clause_words
        self.max_chars = max_chars
        self._buf = ""
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the pieces that are complete."""
        self._buf += text
        out: list[str] = []
        while piece := self._next_piece():
            out.append(piece)
        return out

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []

    def _cut(self, end: int) -> str:
        piece, self._buf = self._buf[:end].strip(), self._buf[end:]
        self._emitted += 1
        return piece

    def _abbreviation(self, dot: int) -> bool:
        head = self._buf[: dot + 1]
        if _ABBREV.search(head):
            return True
        return bool(_NUMBER_ABBREV.search(head)) and self._buf[dot + 1 :].lstrip()[:1].isdigit()

    def _next_piece(self) -> str | None:
        for match in _SENTENCE_END.finditer(self._buf):
            if not self._abbreviation(match.start()):
                return self._cut(match.end())
        if self._emitted == 0:
            # The first boundary with enough words before it: "Well, sure, I can help you," is
            # cut at its third comma, not held back by the short "Well," before it.
            for match in _CLAUSE_END.finditer(self._buf):
                if len(self._buf[: match.start()].split()) >= self.first_clause_words:
                    return self._cut(match.end())
        if len(self._buf) > self.max_chars:
            cut = self._buf.rfind(" ", 0, self.max_chars)
            return self._cut(cut if cut > 0 else self.max_chars)
        return None
