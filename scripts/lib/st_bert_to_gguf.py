#!/usr/bin/env python3
"""Minimal torch-free converter: sentence-transformers BERT (safetensors) -> GGUF (arch=bert).

Needs only `gguf` (PyPI) and numpy. Usage: st_bert_to_gguf.py MODEL_DIR OUT.gguf [f32|f16|q8_0]
"""
import json, struct, sys
from pathlib import Path
import numpy as np
import gguf

src, out = Path(sys.argv[1]), sys.argv[2]
ftype = sys.argv[3] if len(sys.argv) > 3 else "f16"
cfg = json.loads((src / "config.json").read_text())
assert cfg.get("model_type") == "bert", cfg.get("model_type")

def read_safetensors(p):
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    dt = {"F32": np.float32, "F16": np.float16}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dt:
            continue  # e.g. embeddings.position_ids (I64), unused
        a, b = info["data_offsets"]
        yield name, np.frombuffer(raw[base + a:base + b], dtype=dt[info["dtype"]]).reshape(info["shape"]).astype(np.float32)

w = gguf.GGUFWriter(out, "bert")
w.add_name(src.name)
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_block_count(cfg["num_hidden_layers"])
w.add_head_count(cfg["num_attention_heads"])
w.add_layer_norm_eps(cfg["layer_norm_eps"])
w.add_causal_attention(False)
pool = {}
if (src / "1_Pooling/config.json").exists():
    pool = json.loads((src / "1_Pooling/config.json").read_text())
if pool.get("pooling_mode_mean_tokens"):
    w.add_pooling_type(gguf.PoolingType.MEAN)
elif pool.get("pooling_mode_cls_token"):
    w.add_pooling_type(gguf.PoolingType.CLS)
w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[ftype])

# vocab (WordPiece -> llama.cpp "phantom space" form)
tok = json.loads((src / "tokenizer.json").read_text())
vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
assert [i for _, i in vocab] == list(range(len(vocab)))
special = {t["content"] for t in tok.get("added_tokens", []) if t.get("special")}
tokens, types = [], []
for t, _ in vocab:
    if t in special:
        tokens.append(t); types.append(gguf.TokenType.CONTROL)
    else:
        tokens.append(t[2:] if t.startswith("##") else "\u2581" + t); types.append(gguf.TokenType.NORMAL)
w.add_token_type_count(cfg.get("type_vocab_size", 1))
w.add_tokenizer_model("bert")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_types(types)
gguf.SpecialVocab(src, n_vocab=len(tokens)).add_to_gguf(w)

tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, cfg["num_hidden_layers"])
skip = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
for name, data in read_safetensors(src / "model.safetensors"):
    name = name.removeprefix("bert.")
    if name in skip or name.startswith("cls."):
        continue
    new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
    if new is None:
        raise SystemExit(f"unmapped tensor {name}")
    if data.ndim == 1 or ftype == "f32" or new == "token_types.weight":  # added with ggml_add: must be F32
        w.add_tensor(new, data.astype(np.float32))
    elif ftype == "f16":
        w.add_tensor(new, data.astype(np.float16))
    else:  # q8_0 for 2-D matrices whose rows are multiples of 32
        q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(new, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    print(f"{name:60s} -> {new} {data.shape}")

w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print("wrote", out)
