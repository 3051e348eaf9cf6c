"""Do answers follow the user's language? (issue 15) After a translation request, the next question, in
English, should be answered in English. The embedded SmolLM2-135M kept answering in French.

    .venv/bin/python bench/language.py            # 10 pairs with the app's system prompt, and with --prompt
    .venv/bin/python bench/language.py --pairs 20

Each pair is one fresh conversation through the app's own Assistant (text turns, speech off, greedy): first
"Translate '...' into French/Spanish/German.", then an English question. The reply to the question is put in
the language whose common words it uses most (a word count over short stop-word lists; a reply with none of
them counts as not English). Printed: each pair's reply and verdict, then how many stayed in English.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAIRS = [
    ("Translate 'Where is the train station?' into French.", "What is the capital of Italy?"),
    ("Translate 'Good morning, how are you?' into Spanish.", "How many legs does a spider have?"),
    ("Translate 'I would like a coffee, please.' into French.", "Why is the sky blue?"),
    ("Translate 'Thank you very much for your help.' into German.", "What do bees make?"),
    ("Translate 'The weather is nice today.' into French.", "Name three colours of the rainbow."),
    ("Translate 'Where can I buy a ticket?' into Spanish.", "What is the largest ocean on Earth?"),
    ("Translate 'My name is Anna.' into German.", "How do plants make their food?"),
    ("Translate 'See you tomorrow.' into French.", "What is a good breakfast before a run?"),
    ("Translate 'How much does this cost?' into Spanish.", "Why do cats purr?"),
    ("Translate 'I am learning to cook.' into French.", "How far away is the moon?"),
    ("Translate 'Please open the window.' into German.", "What is the boiling point of water?"),
    ("Translate 'The library is closed on Sunday.' into French.", "Give me a tip for sleeping better."),
]
STOP_WORDS = {
    "English": "the a an is are was and of to in it you that this for with on be can what how why do".split(),
    "French": "le la les est sont un une des du de et que qui pour avec dans ce cette il elle vous je ne pas".split(),
    "Spanish": "el la los las es son un una y de que en por para con se su del al lo como muy".split(),
    "German": "der die das ist sind ein eine und zu den dem des nicht mit sich auf für ich sie es wie".split(),
}


def language_of(text: str) -> str:
    words = re.findall(r"[a-zà-ÿß]+", text.lower())
    counts = {language: sum(word in stop for word in words) for language, stop in STOP_WORDS.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] else "unknown"


def run(assistant, pairs) -> int:
    from chatbot.turn import TurnOptions

    in_english = 0
    for request, question in pairs:
        session = assistant.new_session()
        list(assistant.text_turn(session, request, TurnOptions(speak=False)))
        final = list(assistant.text_turn(session, question, TurnOptions(speak=False)))[-1]
        reply = final.messages[-1]["content"] if isinstance(final.messages[-1]["content"], str) else ""
        verdict = language_of(reply)
        in_english += verdict == "English"
        print(f"  [{verdict:8s}] {question[:40]:40s} -> {reply[:90]!r}")
    return in_english


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--prompt", help="another system prompt to compare with the app's")
    args = parser.parse_args()

    import dataclasses
    import logging

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.config import load_config
    from chatbot.engines import build_engines

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(overrides={"device": "cpu", "llm.model": "embedded", "stt.model": "embedded",
                                 "llm.temperature": "0", "llm.max_new_tokens": "64", "tools.enabled": "false"})
    engines = build_engines(cfg)
    store = AudioStore(None, cfg.files.max_age_s)
    pairs = PAIRS[: args.pairs]
    prompts = [("the app's system prompt", cfg)]
    if args.prompt:
        prompts.append(("--prompt", dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm,
                                                                                      system_prompt=args.prompt))))
    results = []
    for name, prompt_cfg in prompts:
        print(f"{name}: {prompt_cfg.llm.system_prompt!r}")
        results.append(run(Assistant(prompt_cfg, engines, store), pairs))
        print(f"  {results[-1]}/{len(pairs)} answered in English")
    store.close()
    print("RESULT " + " ".join(f"in_english_{i}={n}/{len(pairs)}" for i, n in enumerate(results)))


if __name__ == "__main__":
    main()
