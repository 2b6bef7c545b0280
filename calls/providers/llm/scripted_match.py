"""Tolerant matching of a caller's words for the scripted engine: tokens, intents, QA, IVR menus."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher


def _words_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words_set(
    """a about am an and any are as at be been but by can could did do does for from had has have
    how i i'd i'm if in is it it's just me my of on or our please so tell than that the their them
    then there these they this to us was we what when where which who why will with would you your
    you're know like want okay ok um uh well hi hello"""
)
DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "star": "*", "pound": "#", "hash": "#",
}  # fmt: skip
_DIGIT = r"(?:[0-9*#]|\b(?:" + "|".join(DIGIT_WORDS) + r")\b)"

GOODBYE_PHRASES = ("goodbye", "good bye", "bye", "that's all", "that is all", "talk to you later")
HUMAN_WORDS = _words_set("human agent representative supervisor operator manager")
PERSON_WORDS = _words_set("person someone somebody")  # only with a verb of talking
TALK_CUES = _words_set("speak talk transfer connect")
HUMAN_CUES = TALK_CUES | {"real", "live", "want", "need", "get", "like"}
QUESTION_STARTS = _words_set(
    """what when where which who whom whose why how is are was were do does did can could will
    would should may shall have has"""
)
YES_WORDS = _words_set("yes yeah yep sure ok okay definitely certainly absolutely interested")
NO_WORDS = _words_set("no nope not nah never")


def words(text: str) -> list[str]:
    """Lowercase words (apostrophes kept, digits kept)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def _same_word(a: str, b: str) -> bool:
    """Equal, or close enough for plurals and near-miss transcriptions (salary / salaries)."""
    if a == b:
        return True
    if min(len(a), len(b)) < 4:
        return False
    return SequenceMatcher(None, a, b).ratio() >= 0.8


def similarity(question: str, utterance: str) -> float:
    """0..1: how much of the question's content the utterance covers, blended with its precision."""
    q, u = set(content_words(question)), set(content_words(utterance))
    if not q or not u:
        return 0.0
    covered = sum(1 for a in q if any(_same_word(a, b) for b in u))
    precise = sum(1 for b in u if any(_same_word(a, b) for a in q))
    return 0.75 * covered / len(q) + 0.25 * precise / len(u)


def best_match(utterance: str, questions: list[str], threshold: float) -> int | None:
    """Index of the question the utterance asks (first one on ties), or None below the threshold."""
    scored = [(similarity(q, utterance), -i) for i, q in enumerate(questions)]
    if not scored:
        return None
    score, neg_index = max(scored)
    return -neg_index if score >= threshold else None


def has_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    padded = " " + " ".join(words(text)) + " "
    return any(f" {p} " in padded for p in phrases)


def is_goodbye(text: str) -> bool:
    return has_phrase(text, GOODBYE_PHRASES)


def wants_human(text: str) -> bool:
    ws = set(words(text))
    return bool(ws & HUMAN_WORDS and ws & HUMAN_CUES) or bool(ws & PERSON_WORDS and ws & TALK_CUES)


def is_question(text: str) -> bool:
    ws = words(text)
    return text.rstrip().endswith("?") or bool(ws and ws[0] in QUESTION_STARTS)


def is_yes(text: str) -> bool:
    ws = words(text)
    return bool(ws) and bool(set(ws) & YES_WORDS) and not set(ws) & NO_WORDS


def is_no(text: str) -> bool:
    return bool(set(words(text)) & NO_WORDS)


@dataclass(frozen=True, slots=True)
class MenuOption:
    digits: str
    label: str


def _digit(token: str) -> str:
    return DIGIT_WORDS.get(token.lower(), token)


# The label stops at the next "press" too: transcripts often come without punctuation.
_PRESS_FOR = re.compile(
    rf"\bpress\s+({_DIGIT})\s+(?:for|to)\s+([^.,;!?]*?)(?=\s+press\b|[.,;!?]|$)", re.I
)
_FOR_PRESS = re.compile(
    rf"\b(?:for|to|if)\s+([^.,;!?]*?),?\s+(?:please\s+)?press\s+({_DIGIT})\b", re.I
)
_DIAL = re.compile(rf"\b(?:press|dial|enter|type)\s+((?:{_DIGIT}[\s-]*)+)", re.I)


def menu_options(text: str) -> list[MenuOption]:
    """IVR options in the order spoken: "press 1 for sales", "for billing, press 2"."""
    found: dict[int, MenuOption] = {}
    spans = []
    for m in _PRESS_FOR.finditer(text):
        found[m.start()] = MenuOption(_digit(m.group(1)), m.group(2).strip())
        spans.append(m.span())
    for m in _FOR_PRESS.finditer(text):
        if any(a <= m.start() < b for a, b in spans):  # the "for X" of "press 1 for X"
            continue
        label = re.split(r"\bpress\b", m.group(1), flags=re.I)[-1].strip()
        found.setdefault(m.start(), MenuOption(_digit(m.group(2)), label))
    unique: dict[str, MenuOption] = {}
    for _, option in sorted(found.items()):
        unique.setdefault(option.digits, option)
    return list(unique.values())


def requested_digits(text: str) -> str | None:
    """Digits the speaker asks to have pressed ("please dial 2 0 4", "press one"), if any."""
    m = _DIAL.search(text)
    if not m:
        return None
    return "".join(_digit(t) for t in re.findall(_DIGIT, m.group(1), flags=re.I))


def choose_option(options: list[MenuOption], goal: str) -> MenuOption | None:
    """The option whose label best matches the goal words; else a route to a person; else the first."""
    if not options:
        return None
    goal_words = set(content_words(goal))

    def score(option: MenuOption) -> float:
        label = content_words(option.label)
        return sum(1 for w in label if any(_same_word(w, g) for g in goal_words)) / (
            len(label) or 1
        )

    best = max(options, key=score)  # max keeps the first of equal scores
    if score(best) > 0:
        return best
    for option in options:
        if set(words(option.label)) & (HUMAN_WORDS | PERSON_WORDS):
            return option
    return options[0]
