#!/usr/bin/env bash
# Starts llama-server with the default instruct model, Qwen2.5-Coder-1.5B-Instruct (unless
# something already answers on LLM_PORT), then `doctrina serve`; stops the llama-server it
# started when serve exits. Ctrl-C or a TERM sent to this script stops both.
set -euo pipefail
: "${BIN:?}" "${ADDR:?}" "${DATA_DIR:?}" "${LLM_PORT:=8081}"
CACHE="${DOCTRINA_CACHE:-$HOME/.cache/doctrina}"
MODEL="${LLM_MODEL:-$CACHE/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
export DOCTRINA__INFERENCE__BASE_URL="http://127.0.0.1:$LLM_PORT"

llama_pid=""
if curl -sf "http://127.0.0.1:$LLM_PORT/health" >/dev/null 2>&1; then
  echo "run: an inference server already answers on port $LLM_PORT; using it" >&2
else
  mkdir -p "$DATA_DIR"
  # The server of `make llm` (same model, flags and threads), in its own process group:
  # a TERM to that group stops llm.sh, which stops llama-server's own group.
  LLM_PORT="$LLM_PORT" LLM_MODEL="$MODEL" setsid "$(dirname "$0")/llm.sh" \
    >"$DATA_DIR/llama-server.log" 2>&1 &
  llama_pid=$!
  trap '[ -n "$llama_pid" ] && kill -- "-$llama_pid" 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$LLM_PORT/health" >/dev/null 2>&1 && break
    kill -0 "$llama_pid" 2>/dev/null || { echo "run: llama-server failed, see $DATA_DIR/llama-server.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "run: llama-server ($(basename "$MODEL")) on http://127.0.0.1:$LLM_PORT" >&2
fi
# The first run creates the first admin through the same command an operator would use
# (`doctrina user add NAME --admin`), with a generated password kept only in a file that
# only this user can read. Later runs leave accounts alone.
mkdir -p "$DATA_DIR"
if [ -z "$("$BIN" user list --data-dir "$DATA_DIR")" ]; then
  umask 077
  password_file="$DATA_DIR/initial-admin-password"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$password_file"
  "$BIN" user add admin --admin --clearance "TOP SECRET" --caveat NOFORN --caveat "REL TO USA" \
    --data-dir "$DATA_DIR" <"$password_file" >/dev/null
  echo "run: created the first account: admin (every role), password in $password_file" >&2
fi
[ -f "$DATA_DIR/initial-admin-password" ] &&
  echo "run: sign in as admin with the password in $DATA_DIR/initial-admin-password" >&2
echo "doctrina: open http://$ADDR/" >&2
# The app runs in the background and the script waits for it: bash runs a trap only between
# commands, so with the app in the foreground a TERM sent to this script (a supervisor,
# `kill`) would wait until the app exited on its own. A background job also ignores the
# terminal's Ctrl-C, so both signals are passed on as TERM (the app shuts down gracefully
# on it); the EXIT trap above then stops llama-server.
"$BIN" serve --addr "$ADDR" --data-dir "$DATA_DIR" &
serve_pid=$!
trap 'kill -TERM "$serve_pid" 2>/dev/null || true' INT TERM
status=0
wait "$serve_pid" || status=$?
# A signal ends the first wait early; wait again for the app's own shutdown.
if kill -0 "$serve_pid" 2>/dev/null; then
  wait "$serve_pid" || status=$?
fi
exit "$status"
