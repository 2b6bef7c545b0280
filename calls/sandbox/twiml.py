"""TwiML as the sandbox carrier executes it: a `<Response>` document parsed into verbs.

Supported: <Connect><Stream url><Parameter name value/></Stream></Connect>, <Play digits>,
<Play>url</Play>, <Pause length>, <Say>, <Dial>number</Dial> (or <Dial><Number>), <Hangup/>,
<Reject/>, <Redirect>url</Redirect>. Anything else is kept as `Unsupported` (and skipped).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

DIGITS = set("0123456789*#wW")


class TwimlError(ValueError):
    """Not a TwiML document Twilio would run (Twilio error 12100)."""


@dataclass(frozen=True)
class Stream:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    name: str = ""
    track: str = "inbound_track"


@dataclass(frozen=True)
class PlayDigits:
    digits: str


@dataclass(frozen=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    length: float = 1.0


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Dial:
    number: str
    caller_id: str = ""


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Unsupported:
    verb: str


Verb = Stream | PlayDigits | Play | Pause | Say | Dial | Hangup | Reject | Redirect | Unsupported


def _number(text: str | None, where: str) -> float:
    try:
        return float(text or 0)
    except ValueError:
        raise TwimlError(f"{where} must be a number, got {text!r}") from None


def _connect(element: ET.Element) -> Verb:
    children = list(element)
    if len(children) != 1 or children[0].tag != "Stream":
        return Unsupported("Connect/" + "/".join(c.tag for c in children))
    stream = children[0]
    url = (stream.get("url") or "").strip()
    if not url:
        raise TwimlError("<Stream> needs a url")
    params = {}
    for child in stream:
        if child.tag != "Parameter" or not child.get("name"):
            raise TwimlError(f"<Stream> may only hold <Parameter name value>, not <{child.tag}>")
        params[child.get("name") or ""] = child.get("value") or ""
    return Stream(url, params, stream.get("name") or "", stream.get("track") or "inbound_track")


def _dial(element: ET.Element) -> Verb:
    number = (element.text or "").strip()
    for child in element:
        if child.tag == "Number":
            number = (child.text or "").strip()
        else:
            return Unsupported(f"Dial/{child.tag}")
    if not number:
        raise TwimlError("<Dial> needs a number")
    return Dial(number, element.get("callerId") or "")


def _verb(element: ET.Element) -> Verb:
    tag = element.tag
    if tag == "Connect":
        return _connect(element)
    if tag == "Play":
        digits = element.get("digits")
        if digits is not None:
            if not digits or set(digits) - DIGITS:
                raise TwimlError(f"<Play digits> takes 0-9 * # w, got {digits!r}")
            return PlayDigits(digits)
        return Play((element.text or "").strip(), int(_number(element.get("loop") or "1", "loop")))
    if tag == "Pause":
        return Pause(_number(element.get("length") or "1", "<Pause length>"))
    if tag == "Say":
        return Say((element.text or "").strip())
    if tag == "Dial":
        return _dial(element)
    if tag == "Hangup":
        return Hangup()
    if tag == "Reject":
        return Reject(element.get("reason") or "rejected")
    if tag == "Redirect":
        return Redirect((element.text or "").strip(), (element.get("method") or "POST").upper())
    return Unsupported(tag)


def parse(document: str) -> list[Verb]:
    try:
        root = ET.fromstring(document.strip())
    except ET.ParseError as exc:
        raise TwimlError(f"malformed TwiML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"the root element must be <Response>, not <{root.tag}>")
    return [_verb(child) for child in root]
