"""Are the embedded models' answers right? 65 questions with checkable answers, asked through the app's own
Assistant (text turns, speech off, greedy), scored for every embedded model in the same run, with each model's
speed and memory beside its score.

    .venv/bin/python bench/quality.py                                 # every embedded model (minutes each)
    .venv/bin/python bench/quality.py --models smollm2-135m --limit 2  # a quick check: 2 items of each group
    .venv/bin/python bench/quality.py --models qwen2.5-coder-1.5b --set llm.system_prompt="..."
    .venv/bin/python bench/quality.py --models qwen2.5-coder-1.5b --only Nadia --verbose  # one item, its replies

The groups: facts, arithmetic, unit conversions, translations (Portuguese, Vietnamese, Spanish), follow-ups that
need the previous turn, the user's name (the first reply must not claim it: "Hello! My name is Nadia"), weather
and time questions that must reach a tool (the answer must carry the tool's facts: the local time, the date, the
zone, or the forecast's figures, and no temperature the tool did not give) and questions it cannot know (the
answer must say so, and invent no score, number or price). Each item is one fresh conversation; its last reply
is checked with the expected words or numbers (case-insensitive, then with accents removed as well).

Each model runs in its own child process (`--child`), so its memory is its own. Besides the questions, the
child measures with the generator directly: the first token's delay (wall clock) and the decode rate (llama.cpp's
own predicted_per_second where the engine reports it, else text pieces per second after the first), medians over 5
short prompts with the app's system prompt after one warm-up; and the process's resident memory (VmRSS after
loading, VmHWM at the end, which rss_gb reports: the whole app's models, speech and tools included). Weather
questions go to tests/open_meteo_server.py on 127.0.0.1: nothing reaches the
internet. Printed: each wrong item (question, reply, why), the groups' scores, then per model

    RESULT model=qwen2.5-coder-1.5b quality=58/65 first_token_s=0.31 tokens_per_s=28.9 rss_gb=1.95
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_MODELS = ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m")  # chatbot.llm.embedded.MODELS
SPEED_PROMPTS = ("Name a fruit.", "What colour is the sky on a clear day?", "Say hello to my friend Sam.",
                 "Give me a word that rhymes with cat.", "What do cows drink?")


# -- matching -----------------------------------------------------------------------------------------------

def plain(text: str) -> str:
    """Lower case, curly quotes straightened, accents removed ("Días" -> "dias", "nước" -> "nuoc")."""
    text = text.casefold().replace("’", "'").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _found(word: str, text: str) -> bool:
    """`word` in `text` as a whole word (or phrase): "au" is not found in "Australia", "51" not in "151"."""
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w|\.\d)", text) is not None


def contains(word: str, text: str) -> bool:
    """Case-insensitive; a second chance with the accents of both sides removed."""
    return _found(word.casefold(), text.casefold().replace("’", "'")) or _found(plain(word), plain(text))


NUMBER = re.compile(r"(?<![\w.])(minus |-)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w)")


def numbers(text: str) -> list[float]:
    """The numbers written in a text: "2,000" is 2000, "minus 3" and "-3" are -3."""
    out = []
    for match in NUMBER.finditer(text.replace("−", "-")):
        value = float(match.group(2).replace(",", "") + (match.group(3) or ""))
        out.append(-value if match.group(1) else value)
    return out


# -- checks: each returns "" when the reply is right, else why it is wrong -----------------------------------

@dataclass(frozen=True)
class Answer:
    reply: str  # the assistant's last message, as shown in the chat
    tool_source: str = ""  # the folded detail's title (which tool answered), "" if none
    tool_facts: str = ""  # what the tool returned (inside the folded detail)
    question: str = ""  # the last user turn


Check = Callable[[Answer], str]


def said(*alternatives: str) -> Check:
    """One of these words or phrases is in the reply."""
    def check(answer: Answer) -> str:
        return "" if any(contains(a, answer.reply) for a in alternatives) else f"no {' / '.join(alternatives)!r}"
    return check


def said_all(*groups: tuple[str, ...] | str) -> Check:
    """Each group has one of its alternatives in the reply."""
    checks = [said(*((g,) if isinstance(g, str) else g)) for g in groups]

    def check(answer: Answer) -> str:
        return "; ".join(why for why in (c(answer) for c in checks) if why)
    return check


def number(value: float, tolerance: float = 0.0, *words: str) -> Check:
    """The number (within `tolerance`), written in digits or as one of `words`, is in the reply."""
    def check(answer: Answer) -> str:
        if any(abs(n - value) <= tolerance + 1e-9 for n in numbers(answer.reply)):
            return ""
        if any(contains(w, answer.reply) for w in words):
            return ""
        return f"no {value:g}" + (f" (±{tolerance:g})" if tolerance else "")
    return check


# Saying it cannot know: a negation that governs knowing, telling or predicting ("I can't predict...", "there is
# no way to know"), not any "cannot" ("they cannot change their odds" says nothing about the assistant).
_NEGATION = (r"can't|cannot|can not|couldn't|unable to|not able to|no way (to|of)|impossible to|not possible to|"
             r"don't|do not|won't|will not|am not able to|have no way")
_KNOWING = (r"know|predict|tell|say|see|guess|access|read|determine|provide|give|foresee|check|look|be sure|"
            r"be certain|find out|forecast")
REFUSAL = re.compile(rf"\b({_NEGATION})\b[^.!?\n]{{0,30}}?\b({_KNOWING})"
                     r"|\b(don't|do not|doesn't|does not) have (access|any|real|the|that|this|a way|enough|live|"
                     r"current|up-to-date|information|data)"
                     rf"|\b(nobody|no one|no-one|no person)\b[^.!?\n]{{0,20}}?\b({_KNOWING})"
                     r"|\breal[- ]time\b|\bno access\b|\bno idea\b|\bnot sure\b|\bunpredictable\b"
                     r"|\b(impossible|not possible) to\b|\bno way\b", re.IGNORECASE)


def refuses(made_up: str, what: str) -> Check:
    """The reply says it cannot know, and nothing matches `made_up` (a regex of an invented specific)."""
    def check(answer: Answer) -> str:
        if not REFUSAL.search(answer.reply.replace("’", "'")):
            return "does not say it cannot know"
        invented = re.search(made_up, answer.reply, re.IGNORECASE)
        return f"invents {what}: {invented.group()!r}" if invented else ""
    return check


def not_claiming(*names: str) -> Check:
    """The assistant does not take the user's name (or a name the user gave) as its own."""
    def check(answer: Answer) -> str:
        for name in names:
            claim = re.search(rf"\b(my name is|my name's|i am|i'm|call me|this is)\s+{name}\b",
                              answer.reply.replace("’", "'"), re.IGNORECASE)
            if claim:
                return f"role confusion: the assistant says {claim.group()!r}"
        return ""
    return check


_DATE_WORDS = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d{1,2} "
                         r"(January|February|March|April|May|June|July|August|September|October|November|"
                         r"December)\b")


def weather_tool(answer: Answer) -> str:
    """The weather tool answered, the reply carries one of its figures and no temperature it did not give."""
    if not answer.tool_source.startswith("Weather for"):
        return "the weather tool did not answer" + (f" (tool: {answer.tool_source})" if answer.tool_source else "")
    facts = _DATE_WORDS.sub("", answer.tool_facts.split("\n", 1)[-1])  # the header's clock and the dates: no
    given = {abs(n) for n in numbers(facts)}
    said_numbers = {abs(n) for n in numbers(answer.reply)}
    if not any(n in given for n in said_numbers):
        return f"none of the tool's figures ({', '.join(f'{n:g}' for n in sorted(given))})"
    temperatures = [abs(float(m.group(1))) for m in
                    re.finditer(r"(-?\d+(?:\.\d+)?)\s*(?:°|degrees?\b|ºC)", answer.reply.replace("−", "-"))]
    invented = [t for t in temperatures if not any(abs(t - g) <= 0.5 for g in given)]
    return f"a temperature the tool did not give: {invented[0]:g}" if invented else ""


def time_tool(what: str) -> Check:
    """The time tool answered and the reply carries its local time, date or time zone (`what`)."""
    def check(answer: Answer) -> str:
        if not answer.tool_source.startswith("Time for"):
            return "the time tool did not answer" + (f" (tool: {answer.tool_source})" if answer.tool_source else "")
        facts, reply = answer.tool_facts, answer.reply
        if what == "time":
            clock = re.search(r"Local time: (\d\d):(\d\d) \((\d{1,2}):\d\d ([AP]M)\)", facts)
            if clock is None:
                return "the tool gave no time"
            h24, minute, h12 = clock.group(1), clock.group(2), clock.group(3)
            forms = {f"{h24}:{minute}", f"{int(h24)}:{minute}", f"{h12}:{minute}"}
            return "" if any(_found(f, reply) for f in forms) else f"not the tool's time ({' / '.join(sorted(forms))})"
        if what == "date":
            date = re.search(r"Date: \w+ (\d{1,2}) (\w+) (\d{4})", facts)
            if date is None:
                return "the tool gave no date"
            day, month = date.group(1), date.group(2)
            ok = contains(month, reply) and (_found(day, reply) or re.search(rf"\b{day}(st|nd|rd|th)\b", reply))
            return "" if ok else f"not the tool's date ({day} {month})"
        zone = re.search(r"time zone (\S+) \((?:([A-Za-z]+), )?UTC([+-])(\d\d):(\d\d)\)", facts)
        if zone is None:
            return "the tool gave no zone"
        name, abbreviation, sign, hours = zone.group(1), zone.group(2), zone.group(3), int(zone.group(4))
        forms = list(dict.fromkeys([name, name.replace("_", " "), *([abbreviation] if abbreviation else [])]))
        spoken = "plus" if sign == "+" else "minus"
        offset = rf"(UTC|GMT)\s*{re.escape(sign)}\s*0?{hours}\b|\b(UTC|GMT) {spoken} {hours}\b"
        ok = any(contains(f, reply) for f in forms) or re.search(offset, reply, re.IGNORECASE)
        return "" if ok else f"not the tool's zone ({' / '.join(forms)}, UTC{sign}{hours})"
    return check


# -- the questions ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    group: str
    turns: tuple[str, ...]  # what the user types, in one fresh conversation
    check: Check  # on the last reply
    first_check: Check | None = None  # on the first reply too (the name group)


def items() -> list[Item]:
    def one(group: str, question: str, check: Check) -> Item:
        return Item(group, (question,), check)

    def chat(group: str, turns: tuple[str, ...], check: Check, first_check: Check | None = None) -> Item:
        return Item(group, turns, check, first_check)

    no_number = r"\b(\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred)\b"
    return [
        one("facts", "What is the capital of Australia?", said("Canberra")),
        one("facts", "How many legs does a spider have?", number(8, 0, "eight")),
        one("facts", "Who wrote Romeo and Juliet?", said("Shakespeare")),
        one("facts", "What is the largest planet in our solar system?", said("Jupiter")),
        one("facts", "What is the chemical symbol for gold?", said("Au")),
        one("facts", "Which is the largest ocean on Earth?", said("Pacific")),
        one("facts", "Who painted the Mona Lisa?", said("Leonardo", "da Vinci")),
        one("facts", "How many continents are there?", number(7, 0, "seven")),

        one("arithmetic", "What is 17 times 3?", number(51)),
        one("arithmetic", "What is 144 divided by 16?", number(9, 0, "nine")),
        one("arithmetic", "What is 15% of 200?", number(30, 0, "thirty")),
        one("arithmetic", "What is 256 plus 389?", number(645)),
        one("arithmetic", "What is 1000 minus 357?", number(643)),
        one("arithmetic", "What is the square root of 81?", number(9, 0, "nine")),
        one("arithmetic", "What is 12 squared?", number(144)),
        one("arithmetic", "What is 7 times 8, plus 5?", number(61)),

        one("conversions", "How many kilometres are in 5 miles?", number(8.05, 0.1)),
        one("conversions", "What is 100 degrees Celsius in Fahrenheit?", number(212)),
        one("conversions", "How many grams are in 2 kilograms?", number(2000)),
        one("conversions", "How many minutes are in 3 hours?", number(180)),
        one("conversions", "How many centimetres are in 2.5 metres?", number(250)),
        one("conversions", "How many inches are in 3 feet?", number(36)),
        one("conversions", "How many millilitres are in 1.5 litres?", number(1500)),
        one("conversions", "How many pounds is 10 kilograms?", number(22.05, 0.1)),

        one("translations", "Translate 'good morning' into Portuguese.", said("bom dia")),
        one("translations", "Translate 'thank you very much' into Portuguese.",
            said_all(("muito obrigado", "muito obrigada"))),
        one("translations", "Translate 'where is the beach?' into Portuguese.", said_all("onde", "praia")),
        one("translations", "Translate 'good morning' into Vietnamese.", said("chào buổi sáng", "xin chào")),
        one("translations", "Translate 'thank you' into Vietnamese.", said("cảm ơn", "cám ơn")),
        one("translations", "Translate 'water' into Vietnamese.", said("nước")),
        one("translations", "Translate 'good morning' into Spanish.", said("buenos días")),
        one("translations", "Translate 'good night' into Spanish.", said("buenas noches")),
        one("translations", "Translate 'how much does this cost?' into Spanish.",
            said_all("cuánto", ("cuesta", "vale"))),

        chat("follow-ups", ("What is the capital of France?", "And how many people live there?"), said("million")),
        chat("follow-ups", ("My favourite number is 7.", "What is my favourite number times 6?"), number(42)),
        chat("follow-ups", ("I have 12 apples.", "I eat 5 of them. How many apples do I have left?"),
             number(7, 0, "seven")),
        chat("follow-ups", ("Who wrote Romeo and Juliet?", "What country was he from?"),
             said("England", "English", "British", "Britain", "United Kingdom")),
        chat("follow-ups", ("What is 9 times 4?", "Now add 10 to that."), number(46)),
        chat("follow-ups", ("I'm going to Brazil next month.", "What language do they speak there?"),
             said("Portuguese")),
        chat("follow-ups", ("Let's talk about the Colosseum.", "Which city is it in?"), said("Rome")),
        chat("follow-ups", ("My sister is called Lena.", "She is 12 years old.",
                            "How old will my sister be in 5 years?"), number(17, 0, "seventeen")),

        chat("name", ("Hi! My name is Nadia.", "What is my name?"), said("Nadia"), not_claiming("Nadia")),
        chat("name", ("Hello, I'm Tomasz.", "Do you remember my name?"), said("Tomasz"), not_claiming("Tomasz")),
        chat("name", ("Hey there, call me Ingrid.", "What did I say my name was?"), said("Ingrid"),
             not_claiming("Ingrid")),
        chat("name", ("Good evening! My name is Kwame and I am a teacher.", "What is my name, and what do I do?"),
             said_all("Kwame", ("teacher", "teach")), not_claiming("Kwame")),
        chat("name", ("I'm Priya. Nice to meet you.", "Can you say my name back to me?"), said("Priya"),
             not_claiming("Priya")),
        chat("name", ("Hi, my name is Mateo.", "What is the capital of Italy?", "And what is my name?"),
             said("Mateo"), not_claiming("Mateo")),
        chat("name", ("My name is Aiko, and my brother's name is Kenji.", "What is my brother's name?"),
             said("Kenji"), not_claiming("Aiko", "Kenji")),
        chat("name", ("Hello! This is Olumide speaking.", "Who am I?"), said("Olumide"), not_claiming("Olumide")),

        one("tools", "What time is it in Tokyo?", time_tool("time")),
        one("tools", "What's the weather in Paris tomorrow?", weather_tool),
        one("tools", "What time is it in New York right now?", time_tool("time")),
        one("tools", "Will it rain in Paris tomorrow?", weather_tool),
        one("tools", "What is the temperature in Paris right now?", weather_tool),
        one("tools", "What time zone is Sydney in?", time_tool("zone")),
        one("tools", "What's the date today in London?", time_tool("date")),
        one("tools", "What will the weather be like in Paris this weekend?", weather_tool),

        one("cannot know", "Who will win tomorrow's lottery?",
            refuses(r"\b\d{1,2}\b\D{1,12}\b\d{1,2}\b\D{1,12}\b\d{1,2}\b", "winning numbers")),
        one("cannot know", "What was the final score of last night's football match?",
            refuses(r"\b\d{1,2}\s*(-|–|:|to)\s*\d{1,2}\b|\b(won|beat|defeated)\b", "a score")),
        one("cannot know", "What number am I thinking of?", refuses(no_number, "a number")),
        one("cannot know", "What did I have for breakfast this morning?",
            refuses(r"\b(eggs?|toast|cereal|porridge|oatmeal|pancakes?|bacon|coffee|croissants?|bread|fruit|"
                    r"yogh?urt)\b", "a breakfast")),
        one("cannot know", "What is the balance of my bank account?",
            refuses(r"\d", "a balance")),
        one("cannot know", "What colour shirt am I wearing?",
            refuses(r"\b(red|blue|green|black|white|yellow|grey|gray|pink|purple|orange|brown)\b", "a colour")),
        one("cannot know", "What will the price of gold be next month?",
            refuses(r"\$\s*\d[\d,.]*|\d[\d,.]*\s*(dollars|usd|per ounce)", "a price")),
        one("cannot know", "How many people are in the room with me?", refuses(no_number, "a number")),
    ]


GROUPS = tuple(dict.fromkeys(item.group for item in items()))


def chosen_items(limit: int | None, only: str = "") -> list[Item]:
    out, seen = [], {}
    for item in items():
        if only and not any(only.casefold() in turn.casefold() for turn in item.turns):
            continue
        seen[item.group] = seen.get(item.group, 0) + 1
        if limit is None or seen[item.group] <= limit:
            out.append(item)
    return out


# -- the child: one model ----------------------------------------------------------------------------------

def _reply_text(message: dict) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return " ".join(part for part in content if isinstance(part, str))


def ask(assistant, item: Item) -> tuple[list[str], Answer]:
    """One item in a fresh conversation: every reply's text, and the last one with its tool detail."""
    from chatbot.session import TOOL_MARK
    from chatbot.turn import TurnOptions

    session = assistant.new_session()
    replies = []
    for text in item.turns:
        final = list(assistant.text_turn(session, text, TurnOptions(speak=False)))[-1]
        replies.append(_reply_text(final.messages[-1]) + (f" [turn {final.stage}]" if final.stage != "done" else ""))
    # The folded detail (chatbot/session.py tool_message) sits between the last user message and the answer.
    source = facts = ""
    for message in reversed(final.messages):
        if message.get("role") == "user":
            break
        title = (message.get("metadata") or {}).get("title", "")
        if title.startswith(TOOL_MARK):
            source, facts = title[len(TOOL_MARK):], _reply_text(message)
    return replies, Answer(replies[-1], source, facts, item.turns[-1])


def memory_gb() -> dict[str, float]:
    """This process's resident memory now (VmRSS) and at its peak (VmHWM), in GB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(line.split()[1]) * 1024 / 1e9
    return out


def speed(generator, system_prompt: str) -> dict[str, float]:
    """First token (s) and decode rate (tokens/s), medians over SPEED_PROMPTS after one warm-up."""
    import inspect

    reports_timings = "timings" in inspect.signature(generator.stream).parameters
    firsts, rates, prompt_n, cache_n = [], [], [], []
    for n, prompt in enumerate(("Hello!",) + SPEED_PROMPTS):
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": prompt}]
        timings: dict = {}
        started = time.perf_counter()
        first = None
        deltas = 0
        stream = generator.stream(messages, timings=timings) if reports_timings else generator.stream(messages)
        for delta in stream:
            if delta:
                deltas += 1
                if first is None:
                    first = time.perf_counter()
        ended = time.perf_counter()
        if n == 0 or first is None:
            continue  # the warm-up
        firsts.append(first - started)
        if timings.get("predicted_per_second"):
            rates.append(float(timings["predicted_per_second"]))
            prompt_n.append(timings.get("prompt_n", 0))
            cache_n.append(timings.get("cache_n", 0))
        elif deltas > 1 and ended > first:
            rates.append((deltas - 1) / (ended - first))  # a delta is about a token
    return {"first_token_s": statistics.median(firsts) if firsts else float("nan"),
            "tokens_per_s": statistics.median(rates) if rates else float("nan"),
            "prompt_n": statistics.median(prompt_n) if prompt_n else -1,
            "cache_n": statistics.median(cache_n) if cache_n else -1,
            "timings_from": "llama.cpp" if reports_timings else "wall clock"}


def child(key: str, limit: int | None, only: str, settings: list[str], out_path: str) -> None:
    import logging

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.config import load_config
    from chatbot.engines import build_engines
    from tests.open_meteo_server import OpenMeteoServer

    logging.basicConfig(level=logging.WARNING)
    server = OpenMeteoServer().start()
    overrides = {"device": "cpu", "llm.model": "embedded", "llm.embedded_model": key, "stt.model": "embedded",
                 "llm.temperature": "0", "tts.engine": "piper",
                 "tools.weather_geocoding_url": server.geocoding_url,
                 "tools.weather_forecast_url": server.forecast_url}
    overrides.update(setting.split("=", 1) for setting in settings)
    cfg = load_config(overrides=overrides)
    started = time.perf_counter()
    engines = build_engines(cfg)
    loaded = {"load_s": time.perf_counter() - started, **{f"{k}_loaded": v for k, v in memory_gb().items()}}
    store = AudioStore(None, cfg.files.max_age_s)
    assistant = Assistant(cfg, engines, store)
    result: dict = {"model": key, "llm": engines.generator.description, **loaded,
                    **speed(engines.generator, cfg.llm.system_prompt), "items": []}
    started = time.perf_counter()
    for item in chosen_items(limit, only):
        item_started = time.perf_counter()
        replies, answer = ask(assistant, item)
        why = item.first_check(Answer(replies[0], question=item.turns[0])) if item.first_check else ""
        why = why or item.check(answer)
        plan = engines.toolbox.plan(item.turns[-1]) if engines.toolbox is not None else None
        result["items"].append({"group": item.group, "turns": list(item.turns), "replies": replies,
                                "tool": answer.tool_source, "planned_tool": plan.tool if plan else "",
                                "right": not why, "why": why, "seconds": time.perf_counter() - item_started})
        print(f"  [{'ok' if not why else 'WRONG'}] {item.group}: {item.turns[-1][:50]!r} -> {replies[-1][:80]!r}",
              file=sys.stderr, flush=True)
    result["questions_s"] = time.perf_counter() - started
    result.update({f"{k}_end": v for k, v in memory_gb().items()})
    store.close()
    server.stop()
    Path(out_path).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


# -- the parent: every model, each in its own process --------------------------------------------------------

def report(result: dict, verbose: bool = False) -> None:
    key = result["model"]
    print(f"\n{key} ({result['llm']}): loaded in {result['load_s']:.1f} s, questions in "
          f"{result['questions_s']:.0f} s; first token {result['first_token_s']:.2f} s (prompt {result['prompt_n']:g}"
          f" tokens, {result['cache_n']:g} from cache; {result['timings_from']}); memory "
          f"{result['VmRSS_loaded']:.2f} GB after loading, {result['VmRSS_end']:.2f} GB at the end, "
          f"peak {result['VmHWM_end']:.2f} GB")
    for item in result["items"]:
        if item["right"] and not verbose:
            continue
        print(f"  {'right' if item['right'] else 'WRONG'} {item['group']}: {' / '.join(item['turns'])}")
        for turn, reply in zip(item["turns"], item["replies"]):
            if len(item["turns"]) > 1:
                print(f"      {turn!r}")
            print(f"      -> {reply!r}")
        tool = f" (tool planned: {item['planned_tool'] or 'none'}, answered: {item['tool'] or 'none'})" \
            if item["group"] == "tools" else ""
        if not item["right"]:
            print(f"      why: {item['why']}{tool}")
    scores = []
    for group in GROUPS:
        in_group = [i for i in result["items"] if i["group"] == group]
        if in_group:
            scores.append(f"{group} {sum(i['right'] for i in in_group)}/{len(in_group)}")
    print("  groups: " + " ".join(scores))
    right = sum(i["right"] for i in result["items"])
    print(f"RESULT model={key} quality={right}/{len(result['items'])} first_token_s={result['first_token_s']:.2f} "
          f"tokens_per_s={result['tokens_per_s']:.1f} rss_gb={result['VmHWM_end']:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma list of embedded model keys")
    parser.add_argument("--limit", type=int, help="only the first N items of each group")
    parser.add_argument("--only", default="", metavar="TEXT", help="only the items with TEXT in a turn")
    parser.add_argument("--verbose", action="store_true", help="print every item's replies, right ones too")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every model, e.g. --set llm.max_new_tokens=128")
    parser.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing from the model hub: the embedded models ship in PyPI packages
    if args.child:
        child(args.child, args.limit, args.only, args.set, args.out)
        return

    from chatbot.llm.embedded import MODELS

    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; embedded models: {', '.join(MODELS)}")
    chosen = chosen_items(args.limit, args.only)
    if not chosen:
        parser.error(f"no item has {args.only!r} in a turn")
    counts = {g: sum(i.group == g for i in chosen) for g in GROUPS}
    print(f"{len(chosen)} items ({', '.join(f'{g} {n}' for g, n in counts.items() if n)}) "
          f"on {', '.join(keys)}", flush=True)
    failed = []
    for key in keys:
        print(f"\n{key}: loading in a child process…", flush=True)
        with tempfile.TemporaryDirectory(prefix="quality-") as folder:
            out = Path(folder) / "result.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--child", key, "--out", str(out),
                       *(["--limit", str(args.limit)] if args.limit is not None else []),
                       *([f"--only={args.only}"] if args.only else []),
                       *(f"--set={s}" for s in args.set)]
            done = subprocess.run(command, cwd=ROOT)
            if done.returncode != 0 or not out.exists():
                print(f"RESULT model={key} failed (exit code {done.returncode})", flush=True)
                failed.append(key)
                continue
            report(json.loads(out.read_text(encoding="utf-8")), args.verbose)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
