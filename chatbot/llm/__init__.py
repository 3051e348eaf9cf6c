"""The reply generators: the `ReplyGenerator` interface (base) and one module per engine.

transformers (CUDA: Phi-3-mini bf16), ONNX Runtime GenAI (the CPU default), OpenVINO, and an OpenAI-compatible
server; `embedded` is the SmolLM2 model shipped inside a PyPI package, `model_cache` the folders built once.
"""
