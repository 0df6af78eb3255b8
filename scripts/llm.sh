#!/usr/bin/env bash
# Starts the default inference server alone: llama.cpp's llama-server with
# Qwen2.5-Coder-1.5B-Instruct (the GGUF's own chat template, --jinja) on 127.0.0.1:$LLM_PORT,
# in its own process group, and stops the whole group on Ctrl-C or SIGTERM.
#
#   make llm                      # or: LLM_PORT=8081 LLM_MODEL=/path/to/model.gguf scripts/llm.sh
#   (LLM_CTX, LLM_THREADS and LLM_BATCH_THREADS override the context size and threads)
set -euo pipefail
CACHE="${DOCTRINA_CACHE:-$HOME/.cache/doctrina}"
LLAMA="$CACHE/venv/bin/llama-cpp-server"
: "${LLM_PORT:=8081}" "${LLM_MODEL:=$CACHE/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
: "${LLM_CTX:=8192}"
# Threads. llama.cpp's threads wait for one another at every token, so when one of them
# must share its core with other work (an indexing job, searches, the support check's
# embeddings) all of them wait. Measured on 2 cores with the default model (one
# Sustainment draft each, 362-400 tokens): beside an indexing job, two generating threads
# made 1.9 tokens/s (314 s for the draft), one made 12.7-12.9 (121-147 s); on an idle
# machine two made 19.2-21.7 and one 13.3-14.0. Generation leaves one core to the app
# (LLM_THREADS); reading the prompt, where the threads do large blocks of work between
# waits, uses every core (LLM_BATCH_THREADS): first token 15-19 s either way when idle.
cores=$(nproc)
: "${LLM_THREADS:=$((cores > 1 ? cores - 1 : 1))}" "${LLM_BATCH_THREADS:=$cores}"
[ -x "$LLAMA" ] || { echo "llm: $LLAMA missing: run make setup" >&2; exit 1; }
[ -f "$LLM_MODEL" ] || { echo "llm: $LLM_MODEL missing: run make setup" >&2; exit 1; }
if curl -sf "http://127.0.0.1:$LLM_PORT/health" >/dev/null 2>&1; then
  echo "llm: something already answers on port $LLM_PORT" >&2
  exit 1
fi
# The wrapper takes llama-server's own flags after `--`.
setsid "$LLAMA" -m "$LLM_MODEL" --host 127.0.0.1 --port "$LLM_PORT" --ctx-size "$LLM_CTX" \
  -- --jinja --threads "$LLM_THREADS" --threads-batch "$LLM_BATCH_THREADS" &
pid=$!
stop() { kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM
trap stop EXIT
echo "llm: $(basename "$LLM_MODEL") on http://127.0.0.1:$LLM_PORT (Ctrl-C stops it)" >&2
wait "$pid"
