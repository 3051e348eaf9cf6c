from audio.speech.sentences import SentenceSplitter, split_sentences


def test_abbreviations_initialisms_and_decimals_do_not_end_a_sentence():
    text = "Mr. Brown met Dr. Lee in the U.S. last year. Pi is about 3.14 and e is 2.72. Bring fruit, e.g. apples."
    assert split_sentences(text, first_min_chars=1000) == [
        "Mr. Brown met Dr. Lee in the U.S. last year.",
        "Pi is about 3.14 and e is 2.72.",
        "Bring fruit, e.g. apples.",
    ]


def test_ellipsis_and_list_numbers_do_not_end_a_sentence():
    assert split_sentences("Well... maybe not. Fine!", first_min_chars=1000) == ["Well... maybe not.", "Fine!"]
    assert split_sentences("Steps:\n1. Open the box.\n2. Take it out.\n", first_min_chars=1000) == [
        "Steps:", "1. Open the box.", "2. Take it out."]


def test_code_blocks_are_held_whole_until_their_fence_closes():
    stream = ["Try this:\n```py", "thon\nx = 1. \nprint(x)\n", "```", "\nThat is all."]
    splitter = SentenceSplitter()
    pieces = [p for delta in stream for p in splitter.feed(delta)] + splitter.flush()
    assert pieces == ["Try this:", "```python\nx = 1. \nprint(x)\n```", "That is all."]


def test_long_sentences_break_at_a_clause_boundary():
    clause = "the river runs past the old mill and under the stone bridge"
    text = f"{clause}, {clause}; {clause}, {clause} and on to the sea."
    pieces = split_sentences(text, max_chars=130, first_min_chars=1000)
    assert all(len(p) <= 130 for p in pieces) and len(pieces) >= 2
    assert all(p.endswith((",", ";", ".")) for p in pieces)
    assert " ".join(pieces) == text


def test_first_piece_is_short_so_speech_starts_early():
    text = "Sure, the capital of France is Paris, a city on the Seine. It is lovely in spring."
    pieces = split_sentences(text, first_min_chars=20, first_max_words=8)
    assert pieces[0] == "Sure, the capital of France is Paris,"
    assert pieces[1:] == ["a city on the Seine.", "It is lovely in spring."]


def test_non_english_punctuation():
    assert split_sentences("你好。我很好！谢谢", first_min_chars=1000) == ["你好。", "我很好！", "谢谢"]
    assert split_sentences("¿Qué tal? ¡Muy bien! Gracias.", first_min_chars=1000) == ["¿Qué tal?", "¡Muy bien!", "Gracias."]


def test_streamed_pieces_equal_the_whole_text():
    text = "One. Two, three! Four?\nFive"
    splitter = SentenceSplitter(first_min_chars=1000)
    out = [p for ch in text for p in splitter.feed(ch)] + splitter.flush()
    assert out == ["One.", "Two, three!", "Four?", "Five"]


def test_first_piece_without_punctuation_ends_after_a_few_words():
    pieces = split_sentences("Cats purr for many different reasons and they do it when happy. Yes.",
                             first_min_chars=20, first_max_words=8)
    assert pieces[0] == "Cats purr for many different reasons and they"
    assert pieces[1:] == ["do it when happy.", "Yes."]
