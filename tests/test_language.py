"""Answers follow the user's language: which language a message is in, and what the model is shown."""

import pytest

from chatbot.conversation import Conversation
from chatbot.language import language_of, reply_language


@pytest.mark.parametrize("text, language", [
    ("What is the capital of Italy?", "English"),
    ("how do plants make their food", "English"),
    ("Quelle est la capitale de la France ?", "French"),
    ("¿Cómo se dice hola en el idioma de los gatos?", "Spanish"),
    ("Wie spät ist es in der Stadt?", "German"),
    ("Paris", None),  # nothing to tell by
    ("", None),
])
def test_the_language_of_a_message(text, language):
    assert language_of(text) == language


@pytest.mark.parametrize("text", ["Translate 'Where is the train station?' into French.",
                                  "How do you say 'thank you' in Japanese?", "Can you translate this for me?"])
def test_a_request_for_another_language_leaves_the_choice_to_the_model(text):
    assert reply_language(text) is None


def count_words(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


def test_the_prompt_names_the_language_and_strict_leaves_out_turns_in_another():
    conversation = Conversation("Be brief.")
    conversation.commit("Translate 'good night' into French.", "Bonne nuit, c'est la traduction de la phrase.")
    conversation.commit("And what is the capital of Spain?", "The capital of Spain is Madrid.")
    hinted = conversation.prompt("Why is the sky blue?", count_words, 1000, reply_in="English")
    assert [m["role"] for m in hinted] == ["system", "user", "assistant", "user", "assistant", "system", "user"]
    assert hinted[-2] == {"role": "system", "content": "Answer in English."}
    strict = conversation.prompt("Why is the sky blue?", count_words, 1000, reply_in="English",
                                 same_language_only=True)
    assert "Bonne nuit" not in str(strict) and "Madrid" in str(strict)
    plain = conversation.prompt("Why is the sky blue?", count_words, 1000)
    assert plain == conversation.messages("Why is the sky blue?")  # unchanged without a language


def test_a_language_line_only_where_the_model_needs_one_and_it_stays_in_later_prompts():
    conversation = Conversation("Be brief.")
    assert conversation.language_line("What is the capital of Italy?") is None  # English after nothing
    assert conversation.language_line("Qual é a capital da Itália e do Brasil?") == "Portuguese"
    conversation.commit("What is the capital of Italy?", "The capital of Italy is Rome.")
    assert conversation.language_line("And what is the capital of Spain?") is None  # English after English
    conversation.commit("Translate 'good night' into French.", "Bonne nuit, c'est la traduction de la phrase.")
    assert conversation.language_line("Why is the sky blue?") == "English"  # after a French answer
    # The line a turn was asked with stays in the prompts after it: the processed prefix stays valid.
    conversation.commit("Why is the sky blue?", "Because sunlight is scattered by the air.", "English")
    before = conversation.prompt("Why is the sea blue?", count_words, 1000)
    after_next = (conversation.commit("Why is the sea blue?", "It reflects the sky."),
                  conversation.prompt("Thanks!", count_words, 1000))[1]
    assert after_next[:len(before) - 1] == before[:-1]  # everything but the new message, unchanged
    assert {"role": "system", "content": "Answer in English."} in after_next
