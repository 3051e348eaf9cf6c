"""Text for the ear: what a reply looks like on screen is not what should be read aloud.

Code blocks, URLs, markdown symbols and emoji are removed; links keep their words; what is left is plain
sentences. `speakable` tells whether anything worth sending to a TTS engine remains.
"""

from __future__ import annotations

import re
import unicodedata

_FENCED_CODE = re.compile(r"```.*?(```|$)|~~~.*?(~~~|$)", re.DOTALL)
_INDENTED_CODE = re.compile(r"(?m)^(?: {4}|\t).*$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)\S*[^\s.,;:!?)\]]", re.IGNORECASE)  # keeps end punctuation
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_HEADING = re.compile(r"(?m)^\s{0,3}#{1,6}\s*")
_QUOTE = re.compile(r"(?m)^\s{0,3}>\s?")
_BULLET = re.compile(r"(?m)^\s*[-*+•]\s+")
_RULE = re.compile(r"(?m)^\s*([-*_=])(\s*\1){2,}\s*$")
_TABLE_RULE = re.compile(r"(?m)^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_LEFTOVER_SYMBOLS = re.compile(r"[*_#|`~<>\\^]+")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return (
        unicodedata.category(ch) == "So"  # other symbols: emoji, dingbats, pictographs
        or 0x1F000 <= code <= 0x1FAFF  # emoji blocks, flags (regional indicators)
        or code in (0x200D, 0xFE0F, 0xFE0E, 0x20E3)  # joiner, variation selectors, keycap
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
    )


def clean_for_speech(text: str) -> str:
    """Plain sentences to read aloud from a markdown reply."""
    text = _FENCED_CODE.sub(" ", text)
    text = _INDENTED_CODE.sub(" ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _RULE.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = "".join(ch for ch in text if not _is_emoji(ch))
    text = _LEFTOVER_SYMBOLS.sub(" ", text)
    # A line break ends a spoken phrase: keep it as a pause so list items do not run together.
    lines = [line.strip() for line in _BLANK_LINES.split(text) if line.strip()]
    text = " ".join(line if line[-1] in ".!?:;,。！？" else line + "." for line in lines)
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", text)).strip()


def speakable(text: str) -> bool:
    """True when the text holds at least one letter or digit (punctuation alone is not sent to TTS)."""
    return any(ch.isalnum() for ch in text)

