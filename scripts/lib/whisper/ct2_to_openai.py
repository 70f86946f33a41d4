"""Convert a CTranslate2 Whisper model.bin (faster-whisper format) to an openai-whisper checkpoint (.pt)."""
import re, sys, numpy as np, torch
from ct2read import read_ct2

def main(src, dst):
    m = read_ct2(src); V = m["vars"]
    for a, t in m["aliases"].items(): V.setdefault(a, V[t])
    f = lambda k: torch.from_numpy(np.array(V[k], dtype=np.float32))
    n_audio_layer = len({k.split("/")[1] for k in V if re.match(r"encoder/layer_\d+/", k)})
    n_text_layer = len({k.split("/")[1] for k in V if re.match(r"decoder/layer_\d+/", k)})
    n_vocab, n_text_state = V["decoder/embeddings/weight"].shape
    n_audio_state = V["encoder/conv1/weight"].shape[0]
    dims = dict(n_mels=V["encoder/conv1/weight"].shape[1], n_vocab=n_vocab,
                n_audio_ctx=V["encoder/position_encodings/encodings"].shape[0], n_audio_state=n_audio_state,
                n_audio_head=int(V["encoder/num_heads"]), n_audio_layer=n_audio_layer,
                n_text_ctx=V["decoder/position_encodings/encodings"].shape[0], n_text_state=n_text_state,
                n_text_head=int(V["decoder/num_heads"]), n_text_layer=n_text_layer)
    sd = {}
    def ln(dst, src): sd[dst + ".weight"] = f(src + "/gamma"); sd[dst + ".bias"] = f(src + "/beta")
    def lin(dst, src, bias=True):
        sd[dst + ".weight"] = f(src + "/weight")
        if bias: sd[dst + ".bias"] = f(src + "/bias")
    def fused(prefix, src, names, n):
        w = f(src + "/weight"); b = f(src + "/bias")
        for i, nm in enumerate(names):
            sd[f"{prefix}.{nm}.weight"] = w[i*n:(i+1)*n].clone()
            if nm != "key": sd[f"{prefix}.{nm}.bias"] = b[i*n:(i+1)*n].clone()
            else: assert float(b[i*n:(i+1)*n].abs().max()) == 0.0
    def mlp(dst, src):
        ln(dst + ".mlp_ln", src + "/ffn/layer_norm"); lin(dst + ".mlp.0", src + "/ffn/linear_0"); lin(dst + ".mlp.2", src + "/ffn/linear_1")
    lin("encoder.conv1", "encoder/conv1"); lin("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = f("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        d, s = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        ln(d + ".attn_ln", s + "/self_attention/layer_norm")
        fused(d + ".attn", s + "/self_attention/linear_0", ["query", "key", "value"], n_audio_state)
        lin(d + ".attn.out", s + "/self_attention/linear_1"); mlp(d, s)
    ln("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = f("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = f("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        d, s = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        ln(d + ".attn_ln", s + "/self_attention/layer_norm")
        fused(d + ".attn", s + "/self_attention/linear_0", ["query", "key", "value"], n_text_state)
        lin(d + ".attn.out", s + "/self_attention/linear_1")
        ln(d + ".cross_attn_ln", s + "/attention/layer_norm")
        lin(d + ".cross_attn.query", s + "/attention/linear_0")
        fused(d + ".cross_attn", s + "/attention/linear_1", ["key", "value"], n_text_state)
        lin(d + ".cross_attn.out", s + "/attention/linear_2"); mlp(d, s)
    ln("decoder.ln", "decoder/layer_norm")
    import whisper
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    print("dims", dims); print("missing", missing, "unexpected", unexpected)
    assert not unexpected and set(missing) <= {"alignment_heads"}
    torch.save({"dims": dims, "model_state_dict": model.state_dict()}, dst)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
