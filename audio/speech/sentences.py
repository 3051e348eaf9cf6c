"""Cut a streamed reply into speakable pieces while it is being generated.

A piece ends at a sentence end (. ! ? and their CJK forms, followed by a space), at a line break, or, when a
sentence runs long, at a clause boundary (, ; : or a dash). It does not end at "e.g.", "Dr.", "U.S.", "3.14",
an ellipsis or a list number. Fenced code is held until its fence closes, so that the cleaning step can drop
it whole. The first piece may end early, at a clause boundary or after a few words, so that speech starts
as soon as possible.
"""

from __future__ import annotations

import re

# Lower-cased words that end with a period without ending the sentence.
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf approx dept est fig inc ltd co corp no vol ch sec p pp
jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun a.m p.m
""".split())

_SENTENCE_END = re.compile(r"[.!?。！？]+[\"')\]]*(?=\s)|[。！？]")
_CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[-–—]\s")
_LIST_NUMBER = re.compile(r"(?:^|\n)\s*\d+\.$")
_INITIALISM = re.compile(r"(?:\b[A-Za-z]\.){2,}$")  # U.S. / e.g. / i.e.
_FENCE = "```"


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the punctuation ending at `end` (exclusive) really ends a sentence."""
    mark = text[end - 1]
    if mark != ".":
        return True
    head = text[:end]
    if head.endswith(".."):  # an ellipsis trails off; the sentence usually goes on
        return False
    if _LIST_NUMBER.search(head) or _INITIALISM.search(head):
        return False
    word = re.search(r"(\S+)\.$", head)
    return not (word and word.group(1).lower().lstrip("(\"'") in ABBREVIATIONS)


class SentenceSplitter:
    def __init__(self, max_chars: int = 200, first_min_chars: int = 15, first_max_words: int = 5):
        self.max_chars = max_chars  # a piece longer than this is cut at a clause boundary, else a space
        self.first_min_chars = first_min_chars  # the first piece may end at a clause after this many chars
        self.first_max_words = first_max_words  # ...and, failing a clause, after this many whole words
        self._buffer = ""
        self._emitted = 0

    def _cut(self) -> int:
        """Index after which the buffer can be cut, or 0 if no piece is complete yet."""
        text = self._buffer
        fence = text.find(_FENCE)
        if fence == 0:  # a code block is a piece of its own, once closed (it will not be spoken)
            close = text.find(_FENCE, len(_FENCE))
            return close + len(_FENCE) if close != -1 else 0
        if fence > 0:  # the prose before a code block ends where the block starts, at the latest
            return self._cut_prose(text[:fence]) or fence
        return self._cut_prose(text)

    def _cut_prose(self, text: str) -> int:
        newline = text.find("\n")
        for match in _SENTENCE_END.finditer(text):
            if newline != -1 and newline < match.start():
                break
            if _ends_sentence(text, match.end()):
                return match.end()
        if newline != -1:
            return newline + 1
        if self._emitted == 0 and len(text) >= self.first_min_chars:
            clause = [m.end() for m in _CLAUSE_END.finditer(text) if m.end() >= self.first_min_chars]
            if clause:
                return clause[0]
            # No clause yet: speak the first words now rather than wait for the sentence to finish. The
            # last word may still be growing, so only the words before the last space count.
            complete = text[: text.rfind(" ") + 1]
            if len(complete.split()) >= self.first_max_words:
                return len(complete)
        if len(text) > self.max_chars:
            clauses = [m.end() for m in _CLAUSE_END.finditer(text, 0, self.max_chars)]
            if clauses and clauses[-1] > self.max_chars // 3:
                return clauses[-1]
            space = text.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return 0

    def feed(self, delta: str) -> list[str]:
        """Add generated text; return the pieces it completed (stripped, possibly none)."""
        self._buffer += delta
        pieces = []
        while cut := self._cut():
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece:
                pieces.append(piece)
                self._emitted += 1
        return pieces

    def flush(self) -> list[str]:
        """The rest, once generation has finished."""
        rest, self._buffer = self._buffer.strip(), ""
        if rest:
            self._emitted += 1
            return [rest]
        return []


def split_sentences(text: str, **options) -> list[str]:
    """All pieces of a finished text (as if it were streamed one character at a time)."""
    splitter = SentenceSplitter(**options)
    pieces = []
    for ch in text:
        pieces.extend(splitter.feed(ch))
    return pieces + splitter.flush()
