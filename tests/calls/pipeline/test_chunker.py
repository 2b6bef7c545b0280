"""The reply chunker: an early first clause, then whole sentences, never a lost or split word."""

from __future__ import annotations

import pytest

from calls.pipeline.chunker import TextChunker


def stream(chunker: TextChunker, tokens: list[str]) -> list[tuple[int, str]]:
    """Push tokens one by one; (index of the token that completed it, piece) for every piece."""
    out = []
    for i, token in enumerate(tokens):
        out.extend((i, piece) for piece in chunker.push(token))
    return out


def test_first_clause_goes_out_as_soon_as_its_comma_is_followed_by_a_space():
    tokens = ["I", " can", " help", " you", ",", " and", " the", " range", " is", " wide", "."]
    assert stream(TextChunker(), tokens) == [(5, "I can help you,")]


def test_a_clause_shorter_than_three_words_is_not_cut_on_its_own():
    chunker = TextChunker()
    assert chunker.push("Sure, ") == []
    assert chunker.push("I can") == []
    assert chunker.push(" help.") == []  # a sentence needs the next space to be complete
    assert chunker.push(" Then") == ["Sure, I can help."]


def test_a_short_leading_clause_does_not_block_a_later_long_enough_one():
    chunker = TextChunker()
    assert chunker.push("Well, sure, I can help you with that, and ") == [
        "Well, sure, I can help you with that,"
    ]


@pytest.mark.parametrize("sep", [";", ":", " —", " -"])
def test_other_clause_marks(sep):
    assert TextChunker().push(f"Here is the plan{sep} we meet") == [f"Here is the plan{sep}"]


def test_after_the_first_piece_only_sentence_ends_cut():
    chunker = TextChunker()
    assert stream(chunker, ["Great", " to", " hear", ",", " thank", " you", ".", " "]) == [
        (4, "Great to hear,"),
        (7, "thank you."),
    ]
    assert chunker.push("When are you free, and where, this week? ") == [
        "When are you free, and where, this week?"
    ]
    assert chunker.push("Tuesday works! Or Friday… Maybe") == ["Tuesday works!", "Or Friday…"]
    assert chunker.flush() == ["Maybe"]


def test_pieces_join_back_to_the_text_when_streamed_character_by_character():
    text = (
        "Sure, I can check that for you. The role is hybrid: two days in San Jose. "
        'She said "call me back." Is that okay?'
    )
    chunker = TextChunker()
    pieces = [p for ch in text for p in chunker.push(ch)] + chunker.flush()
    assert pieces == [
        "Sure, I can check that for you.",
        "The role is hybrid: two days in San Jose.",
        'She said "call me back."',
        "Is that okay?",
    ]
    assert " ".join(pieces) == text


def test_a_period_inside_a_number_does_not_end_the_sentence():
    chunker = TextChunker()
    assert chunker.push("It costs 3.") == []
    assert chunker.push("50 dollars a month. And") == ["It costs 3.50 dollars a month."]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith will call you back",
        "Ms. Lee and Mr. Park will join",
        "bring an ID, e.g. a passport",
        "on Main St. near the station",
    ],
)
def test_abbreviations_do_not_end_a_sentence(text):
    chunker = TextChunker(first_clause_words=100)  # sentences only
    assert chunker.push(text + " today. Next") == [text + " today."]


def test_flush_returns_the_rest_once():
    chunker = TextChunker()
    assert chunker.push("  no punctuation at all  ") == []
    assert chunker.flush() == ["no punctuation at all"]
    assert chunker.flush() == []
    assert TextChunker().flush() == []


def test_very_long_text_without_punctuation_is_cut_at_spaces_below_the_limit():
    words = [f"word{i}" for i in range(200)]
    chunker = TextChunker(max_chars=60)
    pieces = [p for w in words for p in chunker.push(w + " ")] + chunker.flush()
    assert len(pieces) > 10
    assert all(0 < len(p) <= 60 for p in pieces)
    assert " ".join(pieces).split() == words  # nothing lost, no word split


def test_a_single_word_longer_than_the_limit_is_cut_hard():
    chunker = TextChunker(max_chars=10)
    assert chunker.push("x" * 25) == ["x" * 10, "x" * 10]
    assert chunker.flush() == ["x" * 5]


def test_no_is_an_abbreviation_only_before_a_number():
    chunker = TextChunker()
    pieces = chunker.push("Oh no. That is bad. Room No. 5 is free. ") + chunker.flush()
    assert pieces == ["Oh no.", "That is bad.", "Room No. 5 is free."]
