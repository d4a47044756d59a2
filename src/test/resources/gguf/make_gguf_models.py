"""GGUF model fixtures: the golden Hugging Face fixtures (../golden, made by transformers) written as
GGUF files by the `gguf` package, with their matrices quantized by gguf's own quantizers, and
transformers' logits for the prompt computed on gguf's dequantization of those matrices.

    python3 make_gguf_models.py [OUTDIR]     # OUTDIR defaults to this script's folder

For each of llama, qwen2, mixtral and mamba it writes FAMILY.gguf (the tensor names, metadata keys
and stored layouts of llama.cpp's converter: q/k rows reordered for interleaved RoPE in the llama
architecture, experts stacked, Mamba's A = -exp(A_log), the conv weight without its middle axis;
the tokenizer as a SentencePiece-style vocabulary with scores) and FAMILY.reference.safetensors:
the prompt's ids, transformers' fp32 logits at every position and its greedy continuation, with
every weight replaced by gguf's dequantization of what FAMILY.gguf stores. So the Java side must
reproduce transformers on exactly the quantized weights, within the fp32 bound. bpe-gpt2.gguf and
bpe-llama-bpe.gguf hold byte-level BPE vocabularies trained by the tokenizers library (llama.cpp's
gpt2 tokenizer model, with those pre-tokenizers), a text, and the ids the library gives it.
Needs gguf, numpy, torch, transformers and safetensors (versions in versions-models.json).
"""

import json
import os
import sys
from importlib.metadata import version

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden")
FAMILIES = ["llama", "qwen2", "mixtral", "mamba"]
GREEDY_TOKENS = 8


def permute_for_rope(w, heads):
    """llama.cpp's row order for ggml's interleaved RoPE: per head, rows (half j, pair i) -> (pair i, half j)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_for_rope(w, heads):
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def quant_type(name, array):
    """A mix of the quantized types on the matrices whose rows are whole blocks; the rest F32."""
    if array.ndim < 2 or array.shape[-1] % 32 != 0 or "norm" in name:
        return T.F32
    if "attn_q" in name or "attn_k" in name or "token_embd" in name or "ssm_in" in name:
        return T.Q8_0
    if "ffn" in name or "ssm_x" in name:
        return T.Q4_0
    return T.Q4_1  # attn_v, attn_output, output, ssm_out


def gguf_tensors(family, config, hf):
    """(gguf name, numpy array as stored) for every weight, and the architecture name."""
    arch = "qwen2" if family == "qwen2" else "mamba" if family == "mamba" else "llama"
    out = {}
    if family == "mamba":
        out["token_embd.weight"] = hf["backbone.embeddings.weight"]
        out["output_norm.weight"] = hf["backbone.norm_f.weight"]
        for i in range(config.num_hidden_layers):
            p, b = f"backbone.layers.{i}.", f"blk.{i}."
            out[b + "attn_norm.weight"] = hf[p + "norm.weight"]
            m = p + "mixer."
            out[b + "ssm_in.weight"] = hf[m + "in_proj.weight"]
            out[b + "ssm_conv1d.weight"] = hf[m + "conv1d.weight"].squeeze(1)
            out[b + "ssm_conv1d.bias"] = hf[m + "conv1d.bias"]
            out[b + "ssm_x.weight"] = hf[m + "x_proj.weight"]
            out[b + "ssm_dt.weight"] = hf[m + "dt_proj.weight"]
            out[b + "ssm_dt.bias"] = hf[m + "dt_proj.bias"]
            out[b + "ssm_a"] = -np.exp(hf[m + "A_log"])
            out[b + "ssm_d"] = hf[m + "D"]
            out[b + "ssm_out.weight"] = hf[m + "out_proj.weight"]
        return arch, out
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    out["token_embd.weight"] = hf["model.embed_tokens.weight"]
    out["output_norm.weight"] = hf["model.norm.weight"]
    if "lm_head.weight" in hf and not config.tie_word_embeddings:
        out["output.weight"] = hf["lm_head.weight"]
    for i in range(config.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        out[b + "attn_norm.weight"] = hf[p + "input_layernorm.weight"]
        out[b + "ffn_norm.weight"] = hf[p + "post_attention_layernorm.weight"]
        for hf_name, g, n_heads in [("q_proj", "attn_q", heads), ("k_proj", "attn_k", kv_heads), ("v_proj", "attn_v", 0),
                                    ("o_proj", "attn_output", 0)]:
            for suffix in ["weight", "bias"]:
                key = p + "self_attn." + hf_name + "." + suffix
                if key in hf:
                    w = hf[key]
                    out[b + g + "." + suffix] = permute_for_rope(w, n_heads) if arch == "llama" and n_heads else w
        if family == "mixtral":
            moe = p + ("block_sparse_moe." if p + "block_sparse_moe.gate.weight" in hf else "mlp.")
            out[b + "ffn_gate_inp.weight"] = hf[moe + "gate.weight"]
            inter = config.intermediate_size
            if moe + "experts.gate_up_proj" in hf:
                gate_up = hf[moe + "experts.gate_up_proj"]
                gate, up = gate_up[:, :inter, :], gate_up[:, inter:, :]
                down = hf[moe + "experts.down_proj"]
            else:
                experts = range(config.num_local_experts)
                gate = np.stack([hf[f"{moe}experts.{e}.w1.weight"] for e in experts])
                up = np.stack([hf[f"{moe}experts.{e}.w3.weight"] for e in experts])
                down = np.stack([hf[f"{moe}experts.{e}.w2.weight"] for e in experts])
            out[b + "ffn_gate_exps.weight"] = np.ascontiguousarray(gate)
            out[b + "ffn_up_exps.weight"] = np.ascontiguousarray(up)
            out[b + "ffn_down_exps.weight"] = np.ascontiguousarray(down)
        else:
            for hf_name, g in [("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")]:
                out[b + g + ".weight"] = hf[p + "mlp." + hf_name + ".weight"]
    return arch, out


def add_metadata(w, family, arch, config, tokenizer):
    w.add_name("isthmus-" + family)
    w.add_vocab_size(config.vocab_size)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_context_length(256)
    if family == "mamba":
        w.add_ssm_conv_kernel(config.conv_kernel)
        w.add_ssm_inner_size(config.intermediate_size)
        w.add_ssm_state_size(config.state_size)
        w.add_ssm_time_step_rank(config.time_step_rank)
        w.add_layer_norm_rms_eps(config.layer_norm_epsilon)
    else:
        w.add_feed_forward_length(config.intermediate_size)
        w.add_head_count(config.num_attention_heads)
        w.add_head_count_kv(config.num_key_value_heads)
        w.add_layer_norm_rms_eps(config.rms_norm_eps)
        w.add_rope_freq_base(config.rope_parameters["rope_theta"] if getattr(config, "rope_parameters", None) else config.rope_theta)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_rope_dimension_count(head_dim)
        if family == "mixtral":
            w.add_expert_count(config.num_local_experts)
            w.add_expert_used_count(config.num_experts_per_tok)
    # The golden tokenizer as a SentencePiece-style vocabulary: BPE tokens in id order, earlier
    # (merged sooner) scoring higher; the three specials are control tokens; no BOS added, as the
    # golden prompt has none.
    vocab = tokenizer["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    specials = {t["content"] for t in tokenizer["added_tokens"]}
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(vocab[t]) for t in tokens])
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_bos_token_id(config.bos_token_id)
    w.add_eos_token_id(config.eos_token_id)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)


def hf_weights_from_gguf(family, arch, config, stored, expected):
    """The transformers model's state dict (its names: `expected`) with every weight gguf's dequantization of what is stored."""
    deq = {name: gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(shape) for name, (data, qtype, shape) in stored.items()}
    heads, kv_heads = getattr(config, "num_attention_heads", 0), getattr(config, "num_key_value_heads", 0)
    inverse = {}
    if family == "mamba":
        inverse["backbone.embeddings.weight"] = deq["token_embd.weight"]
        inverse["backbone.norm_f.weight"] = deq["output_norm.weight"]
        for i in range(config.num_hidden_layers):
            p, b = f"backbone.layers.{i}.", f"blk.{i}."
            m = p + "mixer."
            inverse[p + "norm.weight"] = deq[b + "attn_norm.weight"]
            inverse[m + "in_proj.weight"] = deq[b + "ssm_in.weight"]
            inverse[m + "conv1d.weight"] = deq[b + "ssm_conv1d.weight"][:, None, :]
            inverse[m + "conv1d.bias"] = deq[b + "ssm_conv1d.bias"]
            inverse[m + "x_proj.weight"] = deq[b + "ssm_x.weight"]
            inverse[m + "dt_proj.weight"] = deq[b + "ssm_dt.weight"]
            inverse[m + "dt_proj.bias"] = deq[b + "ssm_dt.bias"]
            inverse[m + "A_log"] = np.log(-deq[b + "ssm_a"].astype(np.float64)).astype(np.float32)
            inverse[m + "D"] = deq[b + "ssm_d"]
            inverse[m + "out_proj.weight"] = deq[b + "ssm_out.weight"]
        return inverse
    inverse["model.embed_tokens.weight"] = deq["token_embd.weight"]
    inverse["model.norm.weight"] = deq["output_norm.weight"]
    if "output.weight" in deq:
        inverse["lm_head.weight"] = deq["output.weight"]
    for i in range(config.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        inverse[p + "input_layernorm.weight"] = deq[b + "attn_norm.weight"]
        inverse[p + "post_attention_layernorm.weight"] = deq[b + "ffn_norm.weight"]
        for hf_name, g, n_heads in [("q_proj", "attn_q", heads), ("k_proj", "attn_k", kv_heads), ("v_proj", "attn_v", 0),
                                    ("o_proj", "attn_output", 0)]:
            for suffix in ["weight", "bias"]:
                if b + g + "." + suffix in deq:
                    w = deq[b + g + "." + suffix]
                    inverse[p + "self_attn." + hf_name + "." + suffix] = unpermute_for_rope(w, n_heads) if arch == "llama" and n_heads else w
        if family == "mixtral":
            moe = p + ("block_sparse_moe." if p + "block_sparse_moe.gate.weight" in expected else "mlp.")
            inverse[moe + "gate.weight"] = deq[b + "ffn_gate_inp.weight"]
            gate, up, down = deq[b + "ffn_gate_exps.weight"], deq[b + "ffn_up_exps.weight"], deq[b + "ffn_down_exps.weight"]
            if moe + "experts.gate_up_proj" in expected:
                inverse[moe + "experts.gate_up_proj"] = np.concatenate([gate, up], axis=1)
                inverse[moe + "experts.down_proj"] = down
            else:
                for e in range(config.num_local_experts):
                    inverse[f"{moe}experts.{e}.w1.weight"] = gate[e]
                    inverse[f"{moe}experts.{e}.w3.weight"] = up[e]
                    inverse[f"{moe}experts.{e}.w2.weight"] = down[e]
        else:
            for hf_name, g in [("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")]:
                inverse[p + "mlp." + hf_name + ".weight"] = deq[b + g + ".weight"]
    return inverse


BPE_TRAINING = (
    "The selective scan keeps a small state for every channel; attention keeps every key and value. "
    "In 2024, 128 experts (top-2) ran at 3.5x the speed!\n\nNaïve code   costs   time: 1,000,000 steps.\n"
)
BPE_TEXT = "The scan keeps 12345 states,  naïve   ones too!\nSee:\t2024-12-02."
SPLIT = {
    "llama-bpe": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
}


def bpe_tokenizer_fixtures(outdir):
    """Byte-level BPE vocabularies as llama.cpp's gpt2 tokenizer model stores them (tokens, merges, the
    pre-tokenizer's name), each with a text and the ids the tokenizers library gives it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    for pre in ["gpt2", "llama-bpe"]:
        tok = Tokenizer(models.BPE())
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre == "gpt2")
        tok.pre_tokenizer = byte_level if pre == "gpt2" else pre_tokenizers.Sequence(
            [pre_tokenizers.Split(tokenizers_regex(SPLIT[pre]), behavior="isolated"), byte_level])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([BPE_TRAINING], trainer=trainer)
        state = json.loads(tok.to_str())
        vocab = state["model"]["vocab"]
        merges = [" ".join(m) if isinstance(m, list) else m for m in state["model"]["merges"]]
        tokens = sorted(vocab, key=vocab.get)
        writer = gguf.GGUFWriter(os.path.join(outdir, "bpe-" + pre + ".gguf"), arch="fixture")
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre)
        writer.add_token_list(tokens)
        writer.add_token_types([3 if t == "<|end|>" else 1 for t in tokens])
        writer.add_token_merges(merges)
        writer.add_eos_token_id(vocab["<|end|>"])
        writer.add_string("fixture.text", BPE_TEXT)
        writer.add_array("fixture.ids", tok.encode(BPE_TEXT).ids)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def tokenizers_regex(pattern):
    from tokenizers import Regex
    return Regex(pattern)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else HERE
    bpe_tokenizer_fixtures(outdir)
    torch.manual_seed(0)
    for family in FAMILIES:
        src = os.path.join(GOLDEN, family)
        config = AutoConfig.from_pretrained(src)
        hf = load_file(os.path.join(src, "model.safetensors"))
        reference = load_file(os.path.join(src, "reference.safetensors"))
        with open(os.path.join(src, "tokenizer.json")) as f:
            tokenizer = json.load(f)
        arch, tensors = gguf_tensors(family, config, hf)
        writer = gguf.GGUFWriter(os.path.join(outdir, family + ".gguf"), arch=arch)
        add_metadata(writer, family, arch, config, tokenizer)
        stored = {}
        for name, array in tensors.items():
            array = np.ascontiguousarray(array.astype(np.float32))
            qtype = quant_type(name, array)
            data = array if qtype == T.F32 else gguf.quants.quantize(array, qtype)
            writer.add_tensor(name, data, raw_dtype=qtype)
            stored[name] = (data, qtype, array.shape)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        weights = hf_weights_from_gguf(family, arch, config, stored, set(model.state_dict().keys()))
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not (config.tie_word_embeddings and m == "lm_head.weight")]
        assert not missing and not unexpected, (family, missing, unexpected)
        if config.tie_word_embeddings:
            model.tie_weights()
        ids = torch.from_numpy(reference["input_ids"].astype(np.int64)).reshape(1, -1)
        with torch.no_grad():
            logits = model(ids).logits[0].float()
            sequence = ids
            for _ in range(GREEDY_TOKENS):
                nxt = model(sequence, use_cache=False).logits[0, -1].argmax().reshape(1, 1)
                sequence = torch.cat([sequence, nxt], dim=1)
        greedy = sequence[0, ids.shape[1]:].clone()
        save_file({"input_ids": ids[0].clone(), "logits": logits.contiguous(), "greedy": greedy},
                  os.path.join(outdir, family + ".reference.safetensors"), metadata={"family": family})
    with open(os.path.join(outdir, "versions-models.json"), "w") as f:
        json.dump({p: version(p) for p in ["gguf", "numpy", "torch", "transformers", "safetensors"]}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
