import pytest

from chatbot.conversation import Conversation, PromptTooLongError

pytestmark = pytest.mark.slow


def test_history_trimmed_to_token_budget_with_the_real_tokenizer(engines):
    generator = engines.generator  # the embedded Qwen2.5: its own tokenizer and chat template (llama.cpp)
    conversation = Conversation("You are terse.")
    for i in range(30):
        conversation.commit(f"Question number {i}: tell me about topic {i} in detail please.",
                            f"Answer {i}: " + "some words about it " * 10)
    full = generator.count_tokens(conversation.messages("And now?"))
    budget = full // 3
    messages = conversation.prompt("And now?", generator.count_tokens, budget)

    assert generator.count_tokens(messages) <= budget
    assert messages[0] == {"role": "system", "content": "You are terse."}  # the system prompt stays
    assert messages[-1] == {"role": "user", "content": "And now?"}
    kept_users = [m["content"] for m in messages if m["role"] == "user"][:-1]
    assert kept_users and kept_users[-1].startswith("Question number 29")  # the newest turns are kept...
    assert not any(u.startswith("Question number 0:") for u in kept_users)  # ...and the oldest dropped
    # As many turns as fit: one more would not.
    first_kept = 30 - len(kept_users)
    assert generator.count_tokens(conversation.messages("And now?", first_kept - 1)) > budget


def test_reply_room_is_reserved_for_the_context_window(engines):
    generator = engines.generator
    assert generator.context_window == 4096  # llama.cpp's window for each conversation (llm.context_window 0)
    conversation = Conversation("sys")
    huge = "word " * 9000
    with pytest.raises(PromptTooLongError, match="too long"):
        conversation.prompt(huge, generator.count_tokens, generator.context_window - generator.settings.max_new_tokens)


def test_whole_history_is_sent_when_it_fits(engines):
    conversation = Conversation("sys")
    conversation.commit("hi", "hello")
    messages = conversation.prompt("again", engines.generator.count_tokens, 4000)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
