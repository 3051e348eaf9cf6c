"""Which language a message is written in, so that the answer follows the user's language.

Small models copy the language of the conversation so far: after "Translate ... into French", SmolLM2-135M
answered English questions in French (bench/language.py: 0 of 10 stayed in English, and 2 of 10 with a system
prompt asking for it). The turn names the language of the user's latest message next to it instead.
"""

from __future__ import annotations

import re

# Short, frequent words that tell these languages apart; a message with none of them is left undecided.
_STOP_WORDS = {
    "English": set("the a an is are was and of to in it you that this for with on be can what how why do does "
                   "i my me your please tell give".split()),
    "French": set("le la les est sont un une des du de et que qui pour avec dans ce cette il elle vous je ne pas "
                  "quel quelle comment pourquoi".split()),
    "Spanish": set("el la los las es son un una y de que en por para con se su del al lo como muy qué cómo "
                   "por qué".split()),
    "German": set("der die das ist sind ein eine und zu den dem des nicht mit sich auf für ich sie es wie was "
                  "warum".split()),
    "Italian": set("il lo la gli le è sono un una e di che per con non come cosa perché".split()),
    "Portuguese": set("o a os as é são um uma e de que para com não como por que você".split()),
}
ISO_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese"}
_WORD = re.compile(r"[a-zà-ÿß]+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’")  # words being translated are not the message's own


_OTHER_LANGUAGE = re.compile(r"\btranslat|\b(in|into|to)\s+(english|french|spanish|german|italian|portuguese|"
                             r"chinese|japanese|korean|russian|arabic|dutch|hindi)\b", re.IGNORECASE)


def reply_language(text: str) -> str | None:
    """The language an answer to this message should be in: the message's own, unless it asks for another
    ("Translate ... into French", "How do you say ... in Spanish?"): then None, and the model decides."""
    if _OTHER_LANGUAGE.search(text):
        return None
    return language_of(text)


def language_of(text: str) -> str | None:
    """The language whose common words the message uses most (quoted phrases left out); None if unclear."""
    words = _WORD.findall(_QUOTED.sub(" ", text.lower()))
    counts = {language: sum(word in stop for word in words) for language, stop in _STOP_WORDS.items()}
    best = max(counts, key=counts.get)
    runner_up = max(count for language, count in counts.items() if language != best)
    return best if counts[best] > runner_up else None
