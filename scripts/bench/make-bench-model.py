#!/usr/bin/env python3
"""Writes a Llama-architecture GGUF with random weights, for speed measurements only (its
output is gibberish). Sizes are realistic enough that llama.cpp's compute kernels, not call
overhead, dominate — unlike the 260K-parameter stories model.

Needs the `gguf` and `numpy` packages (llama.cpp's own gguf-py): scripts/bench/simd-bench.sh
installs them in a virtual environment.

usage: make-bench-model.py OUT.gguf [--dim 1024] [--layers 8] [--type q8_0|q4_0|f16|f32] [--ctx 2048]

--ctx is the context length written in the header (llama.cpp caps n_ctx to it): a large one
lets a run ask for a KV cache that does not fit in VRAM (scripts/device/gpu-run.sh, out-of-memory step).
"""
import argparse

import gguf
import numpy as np


def vocabulary():
    # SentencePiece-style: specials, the 256 byte-fallback tokens, then printable characters.
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    printable = ["\u2581"] + [chr(c) for c in range(33, 127)]
    tokens += printable
    types += [gguf.TokenType.NORMAL] * len(printable)
    scores = [0.0] * 259 + [-float(i) for i in range(len(printable))]
    return tokens, scores, types


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--type", default="q8_0", choices=["q8_0", "q4_0", "f16", "f32"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ctx", type=int, default=2048, help="trained context length in the header")
    args = parser.parse_args()

    qtype = {
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "q4_0": gguf.GGMLQuantizationType.Q4_0,
        "f16": gguf.GGMLQuantizationType.F16,
        "f32": gguf.GGMLQuantizationType.F32,
    }[args.type]
    file_type = {
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "f32": gguf.LlamaFileType.ALL_F32,
    }[args.type]
    dim, layers, heads = args.dim, args.layers, args.heads
    ff = (int(dim * 8 / 3) + 255) // 256 * 256
    tokens, scores, types = vocabulary()
    rng = np.random.default_rng(args.seed)

    writer = gguf.GGUFWriter(args.out, "llama")
    writer.add_name(f"random-llama-{dim}x{layers}-{args.type}")
    writer.add_context_length(args.ctx)
    writer.add_embedding_length(dim)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)

    def weight(name, rows, cols):
        data = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quantize(data, qtype), raw_dtype=qtype)

    def norm(name):
        writer.add_tensor(name, np.ones(dim, dtype=np.float32))

    vocab = len(tokens)
    weight("token_embd.weight", vocab, dim)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        for part in ("q", "k", "v", "output"):
            weight(f"blk.{i}.attn_{part}.weight", dim, dim)
        norm(f"blk.{i}.ffn_norm.weight")
        weight(f"blk.{i}.ffn_gate.weight", ff, dim)
        weight(f"blk.{i}.ffn_up.weight", ff, dim)
        weight(f"blk.{i}.ffn_down.weight", dim, ff)
    norm("output_norm.weight")
    weight("output.weight", vocab, dim)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
