#!/usr/bin/env bash
# The officer's walk in Chromium against the default model (`make walk`): starts the
# inference server of `make llm` unless one already answers on LLM_PORT, runs the ignored
# browser test that drafts with it, and stops the server it started (its whole process
# group) however the test ends. Screenshots: test-artifacts/browser/default-model/.
set -euo pipefail
: "${LLM_PORT:=8081}" "${CARGO:=cargo}"
url="http://127.0.0.1:$LLM_PORT"
started=""
stop() { [ -n "$started" ] && kill -TERM "$started" 2>/dev/null && wait "$started" 2>/dev/null; true; }
trap stop EXIT
if ! curl -sf "$url/health" >/dev/null 2>&1; then
  LLM_PORT="$LLM_PORT" scripts/llm.sh &
  started=$!
  for _ in $(seq 1 600); do
    curl -sf "$url/health" >/dev/null 2>&1 && break
    kill -0 "$started" 2>/dev/null || { echo "walk: the inference server exited" >&2; exit 1; }
    sleep 1
  done
  curl -sf "$url/health" >/dev/null 2>&1 || { echo "walk: no server on $url after 10 minutes" >&2; exit 1; }
fi
DOCTRINA_WALK_LLM="$url" "$CARGO" test -p doctrina-tests --test integration \
  officer_walk_with_the_default_model_in_chromium -- --ignored --nocapture
