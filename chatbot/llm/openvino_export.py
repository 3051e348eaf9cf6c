"""Transformers weights -> an OpenVINO GenAI model folder, with the packages the app already has.

optimum-intel, the usual exporter, pins transformers below the version this app uses, so the export is done
here directly: the model is traced with its KV cache as explicit inputs and outputs, the cache is then turned
into OpenVINO state variables (what `openvino_genai.LLMPipeline` expects: a "stateful" model with a `beam_idx`
input), the weights are compressed with NNCF (int8 per channel, or int4 in groups), and the tokenizer and
detokenizer are converted with openvino-tokenizers. Llama-style decoders (SmolLM2, Phi-3, Llama, Qwen2) work.

Run as `python -m chatbot.llm.openvino_export SOURCE TARGET --precision int8 --group-size 128`: the app starts it
in a child process, so that the ~1.3 GB the export peaks at is not kept by the server.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _kv_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{part}" for i in range(layers) for part in ("key", "value")]


def _traced_model(model):
    """An OpenVINO model of one decoding step: (input_ids, attention_mask, position_ids, past k/v...) ->
    (logits, present k/v...), with dynamic batch, sequence and past lengths."""
    import openvino as ov
    import torch
    from transformers.cache_utils import DynamicCache

    config = model.config
    layers, kv_heads = config.num_hidden_layers, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache(config=config)
            # Filled in place: DynamicCache.update() would concatenate onto an empty placeholder, which traces
            # into a graph with a fixed-size input.
            for i, layer in enumerate(cache.layers):
                layer.dtype, layer.device = past[2 * i].dtype, past[2 * i].device
                layer.keys, layer.values = past[2 * i], past[2 * i + 1]
                layer.is_initialized = True
            new, total = input_ids.shape[1], attention_mask.shape[1]
            # The causal mask spelled out (with padding), so that the traced graph does not depend on shapes.
            query_pos = torch.arange(new) + (total - new)
            causal = torch.arange(total)[None, :] <= query_pos[:, None]
            mask = causal[None, None] & attention_mask[:, None, None, :].bool()
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
            return (out.logits, *present)

    batch, past_len, new = 2, 4, 3  # any small sizes: every dimension that varies is declared dynamic below
    example = [torch.randint(0, 1000, (batch, new)), torch.ones(batch, past_len + new, dtype=torch.int64),
               torch.arange(past_len, past_len + new).repeat(batch, 1)]
    example += [torch.randn(batch, kv_heads, past_len, head_dim) for _ in range(2 * layers)]
    shapes = [ov.PartialShape([-1, -1])] * 3 + [ov.PartialShape([-1, kv_heads, -1, head_dim])] * (2 * layers)
    with torch.no_grad():
        graph = ov.convert_model(Step(), example_input=tuple(example), input=shapes)
    inputs = ["input_ids", "attention_mask", "position_ids", *_kv_names(layers, "past_key_values")]
    outputs = ["logits", *_kv_names(layers, "present")]
    for port, name in zip(graph.inputs, inputs):
        port.get_tensor().set_names({name})
    for port, name in zip(graph.outputs, outputs):
        port.get_tensor().set_names({name})
    return graph, layers


def _make_stateful(graph, layers: int) -> None:
    """Past k/v inputs and present outputs become state variables, reordered by `beam_idx` at each step and
    zero-initialised to the batch size of `input_ids`."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops
    from openvino._offline_transformations import apply_make_stateful_transformation

    past, present = _kv_names(layers, "past_key_values"), _kv_names(layers, "present")
    beam_idx = ops.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([-1]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    graph.add_parameters([beam_idx])
    for name in past:
        port = graph.input(name)
        consumers = port.get_target_inputs()
        reordered = ops.gather(port, beam_idx, ops.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(reordered.output(0))
    graph.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(graph, dict(zip(past, present)))
    batch = ops.gather(ops.shape_of(graph.input("input_ids"), output_type="i64"), ops.constant([0]), ops.constant(0))
    for op in graph.get_ops():
        if op.get_type_name() == "ReadValue":  # the state's initial value: zeros [batch, heads, 0, head_dim]
            dims = [d.min_length for d in op.get_output_partial_shape(0)]
            parts = [batch] + [ops.constant(np.array([d], dtype=np.int64)) for d in dims[1:]]
            zero = ops.constant(0.0, dtype=op.get_output_element_type(0))
            op.set_arguments([ops.broadcast(zero, ops.concat(parts, axis=0))])
    graph.validate_nodes_and_infer_types()


def export(source: Path, target: Path, *, precision: str, group_size: int) -> None:
    import nncf
    import openvino as ov
    import torch
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    target.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, attn_implementation="sdpa").eval()
    graph, layers = _traced_model(model)
    del model
    _make_stateful(graph, layers)
    if precision == "int8":
        graph = nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT8_ASYM)
    elif precision == "int4":
        graph = nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=group_size)
    ov.save_model(graph, target / "openvino_model.xml", compress_to_fp16=False)
    tokenizer, detokenizer = convert_tokenizer(AutoTokenizer.from_pretrained(source), with_detokenizer=True)
    ov.save_model(tokenizer, target / "openvino_tokenizer.xml")
    ov.save_model(detokenizer, target / "openvino_detokenizer.xml")
    for name in _COPIED:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    print(f"exported {source} -> {target} ({precision}) in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--precision", choices=["int8", "int4", "fp32"], default="int8")
    parser.add_argument("--group-size", type=int, default=128)
    args = parser.parse_args()
    export(args.source, args.target, precision=args.precision, group_size=args.group_size)


if __name__ == "__main__":
    main()
