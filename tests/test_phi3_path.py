"""The Phi-3 code path, exercised on a tiny random Phi3ForCausalLM with the real Phi-3 tokenizer.

The model folder is built by the test and loaded through `load_causal_lm`, the same call that loads
microsoft/Phi-3-mini-4k-instruct from the hub.
"""

import pytest

from chatbot.llm.base import GenerationSettings
from chatbot.llm.transformers_engine import TransformersGenerator, choose_attention, choose_dtype, load_causal_lm
from tests.assets import phi3_vocab_gguf

pytestmark = pytest.mark.slow

# Phi-3-mini-4k-instruct's chat format: each message in a role block closed by <|end|>.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' + '\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_phi3(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, Phi3Config, Phi3ForCausalLM

    vocab = phi3_vocab_gguf()
    tokenizer = AutoTokenizer.from_pretrained(vocab.parent, gguf_file=vocab.name)
    tokenizer.chat_template = PHI3_CHAT_TEMPLATE
    config = Phi3Config(vocab_size=32064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                        bos_token_id=1, eos_token_id=[32000, 32001, 32007], pad_token_id=32000)
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-phi3")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_tiny_phi3_loads_through_the_production_loader_and_generates(tiny_phi3):
    tokenizer, model = load_causal_lm(str(tiny_phi3), device="cpu", dtype=choose_dtype("auto", "cpu"),
                                      attention=choose_attention("auto", "cpu"))
    assert type(model).__name__ == "Phi3ForCausalLM"
    assert model.config._attn_implementation == "sdpa"
    assert len(tokenizer) == 32064 and tokenizer.convert_tokens_to_ids("<|end|>") == 32007

    settings = GenerationSettings(max_new_tokens=12, temperature=0.0, top_p=1.0, repetition_penalty=1.0)
    generator = TransformersGenerator(tokenizer, model, settings, name="tiny-phi3", device="cpu")
    assert generator.context_window == 4096
    assert generator.description == "tiny-phi3 · cpu fp32 sdpa"

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    prompt = generator.prompt_text(messages)
    assert prompt == "<|system|>\nBe brief.<|end|>\n<|user|>\nHello there<|end|>\n<|assistant|>\n"
    ids = generator.prompt_ids(messages)[0].tolist()
    assert 32010 in ids and 32007 in ids and 32001 in ids  # <|user|>, <|end|>, <|assistant|> as single tokens

    pieces = list(generator.stream(messages))
    assert pieces and "".join(pieces).strip()  # random weights: some text, of no meaning


@pytest.mark.parametrize("requested,device,flash,expected", [
    ("auto", "cuda", True, "flash_attention_2"),
    ("auto", "cuda", False, "sdpa"),
    ("auto", "cpu", True, "sdpa"),
    ("flash_attention_2", "cpu", True, "sdpa"),
    ("flash_attention_2", "cuda", False, "sdpa"),
    ("flash_attention_2", "cuda", True, "flash_attention_2"),
    ("eager", "cuda", True, "eager"),
])
def test_flash_attention_only_with_cuda_and_the_package(requested, device, flash, expected):
    assert choose_attention(requested, device, flash_available=flash) == expected


def test_dtype_is_bf16_on_cuda_and_fp32_on_cpu():
    import torch

    assert choose_dtype("auto", "cuda") == torch.bfloat16
    assert choose_dtype("auto", "cpu") == torch.float32
    assert choose_dtype("float16", "cuda") == torch.float16


def test_out_of_memory_during_generation_is_told_and_the_next_turn_works(tiny_phi3, engines, cfg, tmp_path):
    """The model raises torch's OutOfMemoryError mid-reply, as CUDA does when the KV cache outgrows the GPU:
    the turn ends with a message saying so (the engine frees the CUDA cache first), the model lock is free
    again, and the next turn is answered."""
    import dataclasses

    import torch

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.turn import TurnOptions

    tokenizer, model = load_causal_lm(str(tiny_phi3), device="cpu", dtype=torch.float32, attention="sdpa")
    settings = GenerationSettings(max_new_tokens=12, temperature=0.0, top_p=1.0, repetition_penalty=1.0)
    generator = TransformersGenerator(tokenizer, model, settings, name="tiny-phi3", device="cpu")
    calls = []

    def out_of_memory_on_the_third_step(_module, _inputs, _output):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = model.model.layers[0].register_forward_hook(out_of_memory_on_the_third_step)
    store = AudioStore(tmp_path / "audio", 60)
    try:
        assistant = Assistant(cfg, dataclasses.replace(engines, generator=generator), store)
        session = assistant.new_session()
        final = list(assistant.text_turn(session, "Hello there", TurnOptions(speak=False)))[-1]
        assert final.stage == "failed" and "ran out of memory" in final.notice and "shorter" in final.notice
        assert "2.00 GiB" not in final.notice and len(calls) == 3
        assert session.messages[0]["content"] == "Hello there"  # kept, to send again

        final = list(assistant.retry_turn(session, TurnOptions(speak=False)))[-1]
        assert final.stage == "done" and len(calls) > 3 and session.messages[-1]["content"].strip()
    finally:
        hook.remove()
        store.close()
