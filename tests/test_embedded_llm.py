"""The embedded default LLM (Qwen2.5-Coder-1.5B on llama.cpp): right answers, each conversation's processed
prefix kept between turns and never shared, bounded memory, the context limit. Real model, greedy."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from chatbot.conversation import Conversation, PromptTooLongError
from chatbot.engines import build_generator
from chatbot.llm.embedded import DEFAULT_MODEL, MODELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def greedy_cfg(cfg):
    return dataclasses.replace(cfg.llm, temperature=0.0, max_new_tokens=48, parallel=2)


@pytest.fixture(scope="module")
def qwen(greedy_cfg, cfg):
    generator, note = build_generator(greedy_cfg, "cpu", cfg.cache_path)
    assert note == ""
    return generator


def test_the_default_embedded_model_is_qwen_on_llama_cpp(engines, cfg):
    assert cfg.llm.embedded_model == DEFAULT_MODEL == "qwen2.5-coder-1.5b"
    assert engines.generator.description == "Qwen2.5-Coder-1.5B-Instruct · cpu llama.cpp Q4_K_M"
    assert engines.follow_language == "hint" and engines.tool_answers == "model"  # it follows instructions


def ask(generator, conversation: Conversation, question: str, timings: dict | None = None) -> str:
    messages = conversation.prompt(question, generator.count_tokens, generator.context_window - 64)
    reply = "".join(generator.stream(messages, timings=timings)).strip()
    conversation.commit(question, reply)
    return reply


@pytest.mark.parametrize("question,expected", [
    ("What is the capital of Australia?", ["canberra"]),
    ("How many legs does a spider have?", ["eight", "8"]),
    ("What is 17 times 3?", ["51"]),
    ("Translate 'good morning, my friend' into Portuguese.", ["bom dia"]),
    ("Traduza para o português: 'Where is the train station?'", ["estação"]),
])
def test_right_answers(qwen, cfg, question, expected):
    reply = ask(qwen, Conversation(cfg.llm.system_prompt), question)
    assert any(word in reply.lower() for word in expected), reply


def test_a_question_in_portuguese_is_answered_in_portuguese(qwen, cfg):
    from chatbot.language import language_of

    conversation = Conversation(cfg.llm.system_prompt)
    conversation.commit("What is the capital of Italy?", "The capital of Italy is Rome.")
    question = "Qual é a capital do Brasil e qual é a língua que se fala lá?"
    line = conversation.language_line(question)
    assert line == "Portuguese"
    messages = conversation.prompt(question, qwen.count_tokens, qwen.context_window - 64, reply_in=line)
    reply = "".join(qwen.stream(messages))
    assert "brasília" in reply.lower() and language_of(reply) == "Portuguese", reply


def test_the_users_name_is_theirs_and_remembered(qwen, cfg):
    conversation = Conversation(cfg.llm.system_prompt)
    greeting = ask(qwen, conversation, "Hi! My name is Nadia.")
    assert "my name is nadia" not in greeting.lower(), greeting  # the role confusion the issue saw
    assert "nadia" in ask(qwen, conversation, "What is my name?").lower()


def test_a_turn_processes_only_its_new_message(qwen, cfg):
    conversation = Conversation(cfg.llm.system_prompt)
    questions = ["Hi! My name is Nadia.", "What is the capital of France?", "How many legs does a cat have?",
                 "What colour is the sky?", "What is my name?"]
    for number, question in enumerate(questions, start=1):
        whole = qwen.count_tokens(conversation.messages(question))
        new = whole - qwen.count_tokens(conversation.messages(""))  # the question's own tokens
        timings: dict = {}
        ask(qwen, conversation, question, timings)
        assert timings["prompt_n"] + timings["cache_n"] == whole, (number, timings)
        if number > 1:
            # Everything up to the previous reply came from the cache; processed were the question and the
            # chat template's dozen tokens around it (end of the reply, the user's and the assistant's headers).
            assert timings["prompt_n"] <= new + 12, (number, new, timings)


def test_two_sessions_never_share_a_cache(qwen, cfg):
    nadia, bruno = Conversation(cfg.llm.system_prompt), Conversation(cfg.llm.system_prompt)
    ask(qwen, nadia, "Hi! My name is Nadia and I live in Lisbon.")
    unknown: dict = {}
    answer = ask(qwen, bruno, "What is my name?", unknown)
    assert "nadia" not in answer.lower() and "lisbon" not in answer.lower(), answer
    assert 0 < unknown["cache_n"] <= qwen.count_tokens(Conversation(cfg.llm.system_prompt).messages(""))  # the
    # shared system prompt at most
    ask(qwen, bruno, "I am Bruno, from Recife.")
    assert "nadia" in ask(qwen, nadia, "What is my name?").lower()
    answer = ask(qwen, bruno, "What is my name?")
    assert "bruno" in answer.lower() and "nadia" not in answer.lower(), answer


def test_an_evicted_cache_is_rebuilt_with_the_same_answer(greedy_cfg, cfg):
    # One slot and no RAM cache: any other conversation pushes this one's processed prefix out.
    small = dataclasses.replace(greedy_cfg, parallel=1, prompt_cache_mib=0)
    generator, _ = build_generator(small, "cpu", cfg.cache_path)
    conversation = Conversation(cfg.llm.system_prompt)
    for question in ["My favourite fruit is the mango.", "I have two cats called Tom and Kit."]:
        ask(generator, conversation, question)
    messages = conversation.messages("What is my favourite fruit, and what are my cats called?")
    cached: dict = {}
    warm = "".join(generator.stream(messages, timings=cached))
    ask(generator, Conversation(cfg.llm.system_prompt), "Tell me about the planet Mars.")  # evicts it
    rebuilt: dict = {}
    cold = "".join(generator.stream(messages, timings=rebuilt))
    assert cached["prompt_n"] < 30 < rebuilt["prompt_n"], (cached, rebuilt)  # it really was processed again
    assert cold == warm and "mango" in cold.lower(), (warm, cold)


def test_the_context_limit_keeps_the_latest_turns_and_refuses_what_cannot_fit(greedy_cfg, cfg):
    small = dataclasses.replace(greedy_cfg, context_window=512, parallel=1)
    generator, _ = build_generator(small, "cpu", cfg.cache_path)
    conversation = Conversation(cfg.llm.system_prompt)
    conversation.commit("My name is Ana.", "Nice to meet you, Ana.")
    for i in range(40):
        conversation.commit(f"Tell me fact number {i} about rivers.", f"Fact {i}: rivers carry water to the sea.")
    budget = generator.context_window - generator.settings.max_new_tokens
    messages = conversation.prompt("Which river is the longest in Africa?", generator.count_tokens, budget)
    assert 400 < generator.count_tokens(messages) <= budget  # filled to the limit, oldest turns dropped
    reply = "".join(generator.stream(messages))
    assert "nile" in reply.lower(), reply
    with pytest.raises(PromptTooLongError, match="too long"):
        conversation.prompt("word " * 600, generator.count_tokens, budget)


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


def test_twenty_sessions_at_once_stay_within_the_memory_bound(greedy_cfg, cfg):
    bounded = dataclasses.replace(greedy_cfg, max_new_tokens=12, prompt_cache_mib=32, context_window=1024)
    generator, _ = build_generator(bounded, "cpu", cfg.cache_path)
    "".join(generator.stream(Conversation("warm").messages("Hi")))
    before = _rss_mb()
    answers: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def session(number: int) -> None:
        try:
            conversation = Conversation(cfg.llm.system_prompt)
            answers[number] = [ask(generator, conversation, f"My lucky number is {number}. Say OK."),
                               ask(generator, conversation, "What is my lucky number?")]
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert len(answers) == 20 and all(a[1] for a in answers.values())
    remembered = sum(str(n) in a[1] for n, a in answers.items())
    assert remembered >= 18, answers  # each conversation its own (a 12-token answer may say it in words)
    # The KV cache is allocated at start; what grows is the prompt cache, bounded by prompt_cache_mib.
    growth = _rss_mb() - before
    assert growth < bounded.prompt_cache_mib + 150, growth


def test_every_embedded_model_has_a_licence_and_a_checksum_or_a_package():
    for model in MODELS.values():
        assert model.licence.startswith("Apache-2.0")
        assert model.package or (len(model.sha256) == 64 and model.size == sum(p.size for p in model.parts))


def test_the_engines_loopback_listener_serves_nobody_without_its_key(qwen):
    import httpx

    base = qwen._server.listening_address
    assert base.startswith("http://127.0.0.1:")  # loopback only
    for path in ("/v1/chat/completions", "/completion", "/tokenize", "/apply-template", "/slots"):
        answer = httpx.post(base + path, json={"messages": [{"role": "user", "content": "hi"}], "content": "hi",
                                               "prompt": "hi", "max_tokens": 1})
        assert answer.status_code == 401, (path, answer.status_code)
