# Voice chatbot for a CUDA GPU host: Phi-3-mini-4k-instruct (bf16, flash-attn), Whisper large-v3-turbo, edge-tts.
#   docker build -t voice-chatbot .
#   docker run --gpus all -p 7860:7860 -v voice-chatbot-cache:/home/app/.cache voice-chatbot
# Models download into the volume on first start (~9 GB) and are reused afterwards.
# Set HF_TOKEN with -e for gated models; add --share (CMD) for a public link.

# The CUDA major version must match the torch wheel's (torch 2.13 wheels on PyPI are built for CUDA 12.x/13.x:
# check `python -c "import torch; print(torch.version.cuda)"`), since flash-attn compiles against both.
ARG CUDA_DEVEL=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
ARG CUDA_RUNTIME=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_DEVEL} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt requirements-embedded.txt requirements-gpu.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-embedded.txt \
    && MAX_JOBS=4 pip install --no-cache-dir --no-build-isolation -r requirements-gpu.txt
# Talk mode's end-of-turn model (Smart Turn v3.2, BSD-2): its ONNX file and licence, out of the pipecat-ai wheel
# as scripts/setup.sh takes them; without it talk mode ends turns by silence alone.
COPY audio ./audio
COPY chatbot ./chatbot
RUN pip download --no-cache-dir --no-deps --dest /tmp/wheels pipecat-ai==1.14.0 \
    && python -m audio.listen.end_of_turn /tmp/wheels/pipecat_ai-1.14.0-*.whl /opt/cache \
    && rm -rf /tmp/wheels

FROM ${CUDA_RUNTIME}
RUN apt-get update && apt-get install -y --no-install-recommends python3 ffmpeg curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/home/app/.cache/huggingface \
    GRADIO_ANALYTICS_ENABLED=False \
    CHATBOT__SERVER__HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
WORKDIR /app
COPY --chown=app:app app.py config.yaml ./
COPY --chown=app:app audio ./audio
COPY --chown=app:app chatbot ./chatbot
# (a new volume starts with what the image has here)
COPY --from=build --chown=app:app /opt/cache/smart-turn /home/app/.cache/voice-chatbot/smart-turn
USER app
RUN mkdir -p /home/app/.cache
VOLUME /home/app/.cache
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/ >/dev/null || exit 1
ENTRYPOINT ["python3", "app.py"]
CMD []
