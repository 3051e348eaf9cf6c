from audio.speech_text import cap_for_speech, clean_for_speech, speakable


def test_markdown_symbols_are_not_read_aloud():
    spoken = clean_for_speech("# Title\nThis is **bold**, _italic_ and `code`.\n- one\n- two\n> quoted")
    assert spoken == "Title. This is bold, italic and code. one. two. quoted."


def test_code_blocks_urls_and_emoji_are_dropped():
    text = "Run this 😀:\n```python\nprint('secret')\n```\nSee https://example.com/a?b=1 or [the docs](http://x.y). 👍🏽"
    spoken = clean_for_speech(text)
    assert "print" not in spoken and "http" not in spoken and "example" not in spoken
    assert "😀" not in spoken and "👍" not in spoken
    assert "the docs" in spoken


def test_punctuation_or_emoji_only_text_is_not_speakable():
    assert not speakable(clean_for_speech("... !!! ???"))
    assert not speakable(clean_for_speech("😀🎉👍🏽"))
    assert not speakable(clean_for_speech("```\nx = 1\n```"))
    assert speakable(clean_for_speech("Hello 😀"))


def test_long_speech_is_capped_at_a_sentence_and_says_so():
    text = "This is a sentence. " * 200
    capped, was_capped = cap_for_speech(text, 300, "The rest is in the chat.")
    assert was_capped and len(capped) < 340
    assert capped.endswith("sentence. The rest is in the chat.")
    assert cap_for_speech("Short.", 300, "x") == ("Short.", False)
