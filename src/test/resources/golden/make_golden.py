"""Golden fixtures for the model tests, made by Hugging Face transformers itself.

For each family this builds a tiny randomly initialised model from a config (nothing is
downloaded), saves it as a Hugging Face checkpoint directory next to this script together with a
tiny BPE tokenizer trained on the paragraph below, and writes reference.safetensors holding the
prompt's token ids, transformers' logits for every prompt position (fp32, on the CPU) and the
greedy continuation (argmax, lowest id on ties, recomputed from the whole sequence each step).

    python3 make_golden.py [OUTDIR [FAMILY...]]   # OUTDIR defaults to this script's folder;
                                                  # the families named (default: all) are written

Needs torch, transformers, tokenizers and safetensors. Each fixture stays well under 1 MB.
"""

import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PARAGRAPH = (
    "The selective scan keeps a small state for every channel and updates it token by token, "
    "so the memory a sequence holds does not grow with its length. Attention keeps every key "
    "and value it has seen, and a mixture of experts sends each token to a few of many small "
    "feed-forward networks. A hybrid puts attention in a few layers and the scan in the rest."
)
PROMPT = "The scan keeps a state for every token and attention keeps every key"
GREEDY_TOKENS = 8
VOCAB = 128


def train_tokenizer(path):
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator([PARAGRAPH], trainer=trainer)
    tok.save(path)
    return tok


def configs(vocab):
    """(name, config) for each family; attention heads are 64 wide, the kernels' smallest head size."""
    from transformers import (GraniteMoeHybridConfig, JambaConfig, LlamaConfig, Mamba2Config,
                              MambaConfig, MistralConfig, MixtralConfig, Phi3Config, Qwen2Config,
                              Qwen3Config, Qwen3MoeConfig)
    common = dict(vocab_size=vocab, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    attention = dict(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                     rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=256,
                     initializer_range=0.15, **common)
    # Llama 3.1's RoPE scaling with an original context of 32: at head_dim 64 and theta 1e4, pair 0
    # (wavelength 2 pi < 32 / 4) stays, pairs 1-5 are blended and pairs 6-31 (over 32 / 1) are
    # divided by the factor, and the prompt plus the greedy tokens run just short of 32 positions.
    llama3_rope = dict(rope_type="llama3", rope_theta=10000.0, factor=4.0, low_freq_factor=1.0,
                       high_freq_factor=4.0, original_max_position_embeddings=32)
    llama3_attention = {key: value for key, value in attention.items() if key != "rope_theta"}
    # Phi-3's LongRoPE over 32 pairs: the short factors while a sequence is at most
    # original_max_position_embeddings long, the long ones beyond. "phi3" keeps the prompt and the
    # greedy tokens (27 positions) within an original context of 32; "phi3_long" has one of 8, so
    # the 19-token prompt already runs on the long factors. max_position_embeddings 256 makes the
    # attention factor sqrt(1 + ln(256 / original) / ln(original)) differ from 1 in both.
    def longrope(original):
        return dict(rope_type="longrope", rope_theta=10000.0,
                    short_factor=[1.0 + 0.03 * j for j in range(32)],
                    long_factor=[1.0 + 0.4 * j for j in range(32)],
                    original_max_position_embeddings=original)
    phi3_attention = {**{key: value for key, value in attention.items() if key != "rope_theta"},
                      "num_attention_heads": 1}
    return [
        ("llama", LlamaConfig(hidden_size=64, head_dim=64, intermediate_size=128,
                              tie_word_embeddings=False, **attention)),
        ("llama3", LlamaConfig(hidden_size=64, head_dim=64, intermediate_size=128,
                               tie_word_embeddings=False, rope_parameters=llama3_rope,
                               **llama3_attention)),
        ("qwen2", Qwen2Config(hidden_size=128, intermediate_size=64, tie_word_embeddings=True,
                              **attention)),
        ("mistral", MistralConfig(hidden_size=64, head_dim=64, intermediate_size=128,
                                  sliding_window=5, tie_word_embeddings=False, **attention)),
        ("mixtral", MixtralConfig(hidden_size=64, head_dim=64, intermediate_size=64,
                                  num_local_experts=4, num_experts_per_tok=2, sliding_window=None,
                                  tie_word_embeddings=False, **attention)),
        # head_dim 64 with hidden 64 over 2 heads: q/k/v are wider than hidden / heads, as Qwen3's are.
        ("qwen3", Qwen3Config(hidden_size=64, head_dim=64, intermediate_size=128,
                              tie_word_embeddings=True, **attention)),
        # A dense MLP in layer 0 (mlp_only_layers) and MoE in layer 1 (decoder_sparse_step 1), the
        # experts narrower than the dense MLP (moe_intermediate_size), the top-2 weights renormalised.
        ("qwen3_moe", Qwen3MoeConfig(hidden_size=64, head_dim=64, intermediate_size=96,
                                     moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
                                     decoder_sparse_step=1, mlp_only_layers=[0], norm_topk_prob=True,
                                     tie_word_embeddings=True, **attention)),
        # Fused qkv_proj and gate_up_proj (one head of 64), a sliding window of 5 and LongRoPE's
        # short factors; phi3_long: no window, LongRoPE's long factors.
        ("phi3", Phi3Config(hidden_size=64, intermediate_size=128, sliding_window=5,
                            original_max_position_embeddings=32, rope_parameters=longrope(32),
                            tie_word_embeddings=False, **phi3_attention)),
        ("phi3_long", Phi3Config(hidden_size=64, intermediate_size=128, sliding_window=None,
                                 original_max_position_embeddings=8, rope_parameters=longrope(8),
                                 tie_word_embeddings=False, **phi3_attention)),
        ("mamba", MambaConfig(hidden_size=64, intermediate_size=128, state_size=16,
                              num_hidden_layers=2, conv_kernel=4, expand=2, time_step_rank=4,
                              layer_norm_epsilon=1e-5, use_bias=False, use_conv_bias=True,
                              # 0.3: at 0.15 the tied head of this tiny model repeats one token,
                              # which would make the greedy check weak.
                              tie_word_embeddings=True, initializer_range=0.3, **common)),
        # Two groups of B and C (the gated norm per group, see grouped_gated_norm), 8 heads of 16,
        # chunks of 8 so that transformers' chunked scan crosses chunk boundaries in the prompt.
        ("mamba2", Mamba2Config(hidden_size=64, num_heads=8, head_dim=16, expand=2, n_groups=2,
                                state_size=16, num_hidden_layers=2, conv_kernel=4, chunk_size=8,
                                layer_norm_epsilon=1e-5, use_bias=False, use_conv_bias=True,
                                tie_word_embeddings=False, initializer_range=0.3, **common)),
        ("jamba", JambaConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=1, num_key_value_heads=1, num_experts=4,
                              num_experts_per_tok=2, attn_layer_period=2, attn_layer_offset=1,
                              expert_layer_period=2, expert_layer_offset=1, mamba_d_state=16,
                              mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=4,
                              mamba_conv_bias=True, mamba_proj_bias=False, use_mamba_kernels=False,
                              rms_norm_eps=1e-6, tie_word_embeddings=False, initializer_range=0.15,
                              **common)),
        # Granite 4.0-H: Mamba-2 in layers 0, 2 and 3 (two groups, the gated norm per group as for
        # mamba2, chunks of 8), RoPE attention with GQA and a head of 64 in layer 1; in every layer
        # a top-2 softmax MoE of 4 experts of 16 plus a shared MLP of 32. Every multiplier differs
        # from 1 (attention_multiplier from 1 / sqrt(64)), and the embeddings are tied.
        ("granitemoehybrid", GraniteMoeHybridConfig(
            hidden_size=64, num_hidden_layers=4, layer_types=["mamba", "attention", "mamba", "mamba"],
            num_attention_heads=2, num_key_value_heads=1, head_dim=64, attention_bias=False,
            position_embedding_type="rope", rope_parameters=dict(rope_type="default", rope_theta=10000.0),
            max_position_embeddings=256, intermediate_size=16, num_local_experts=4,
            num_experts_per_tok=2, shared_intermediate_size=32, mamba_n_heads=8, mamba_d_head=16,
            mamba_n_groups=2, mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=8,
            mamba_conv_bias=True, mamba_proj_bias=False, embedding_multiplier=6.0,
            attention_multiplier=0.2, residual_multiplier=0.5, logits_scaling=3.0,
            rms_norm_eps=1e-5, tie_word_embeddings=True, initializer_range=0.15, **common)),
        # Granite 4.0-H without experts (the shared MLP is the whole FFN), attention without
        # positions and with biases on q/k/v/o (the o bias scaled by residual_multiplier too),
        # one Mamba-2 group, an untied head.
        ("granitemoehybrid_dense", GraniteMoeHybridConfig(
            hidden_size=64, num_hidden_layers=2, layer_types=["attention", "mamba"],
            num_attention_heads=1, num_key_value_heads=1, attention_bias=True,
            position_embedding_type="nope", max_position_embeddings=256, intermediate_size=16,
            num_local_experts=0, shared_intermediate_size=48, mamba_n_heads=4, mamba_d_head=32,
            mamba_n_groups=1, mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=8,
            mamba_conv_bias=True, mamba_proj_bias=False, embedding_multiplier=4.0,
            attention_multiplier=0.05, residual_multiplier=0.7, logits_scaling=2.0,
            rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.15, **common)),
    ]


def grouped_gated_norm(norm, group_size):
    """Mamba-2's gated RMSNorm taken per group of group_size channels, as mamba_ssm (which trains
    these models) computes it: transformers' plain-PyTorch MambaRMSNormGated normalises over the
    whole width, which differs when n_groups > 1."""
    def forward(hidden_states, gate=None):
        input_dtype = hidden_states.dtype
        h = hidden_states.to(torch.float32)
        if gate is not None:
            h = h * torch.nn.functional.silu(gate.to(torch.float32))
        groups = h.view(*h.shape[:-1], -1, group_size)
        groups = groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
        return norm.weight * groups.view(h.shape).to(input_dtype)
    norm.forward = forward


def build(config):
    from transformers import AutoModelForCausalLM
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).float()
    if config.model_type == "mamba2":
        for layer in model.backbone.layers:
            mixer = layer.mixer
            grouped_gated_norm(mixer.norm, mixer.intermediate_size // mixer.n_groups)
    if config.model_type == "granitemoehybrid":
        for layer in model.model.layers:
            if layer.mamba is not None:
                grouped_gated_norm(layer.mamba.norm, layer.mamba.intermediate_size // layer.mamba.n_groups)
    with torch.no_grad():
        # Norm weights away from one, so that a missing or misplaced norm weight shows.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.8, 1.2)
            # Granite's attention biases away from the zeros transformers starts them at, so that
            # a missing bias (or o_proj's bias left out of residual_multiplier) shows.
            elif config.model_type == "granitemoehybrid" and "self_attn" in name and name.endswith(".bias"):
                p.uniform_(-0.2, 0.2)
    return model.eval()


def make(outdir, name, config, tok):
    target = os.path.join(outdir, name)
    shutil.rmtree(target, ignore_errors=True)
    torch.manual_seed(1234)
    model = build(config)
    model.save_pretrained(target, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(target, extra)
        if os.path.exists(path):
            os.remove(path)
    shutil.copy(os.path.join(outdir, "tokenizer.json"), os.path.join(target, "tokenizer.json"))
    ids = torch.tensor([tok.encode(PROMPT).ids], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0].float().contiguous()
        sequence = ids
        greedy = []
        for _ in range(GREEDY_TOKENS):
            nxt = int(torch.argmax(model(sequence, use_cache=False).logits[0, -1]))
            greedy.append(nxt)
            sequence = torch.cat([sequence, torch.tensor([[nxt]])], dim=1)
    save_file({"input_ids": ids[0].contiguous(), "logits": logits,
               "greedy": torch.tensor(greedy, dtype=torch.long)},
              os.path.join(target, "reference.safetensors"), metadata={"prompt": PROMPT})
    size = sum(os.path.getsize(os.path.join(target, f)) for f in os.listdir(target))
    print(f"{name}: {len(ids[0])} prompt tokens, greedy {greedy}, {size / 1024:.0f} KiB")
    if size > 1024 * 1024:
        raise SystemExit(f"{name} is {size} bytes, over the 1 MB fixture budget")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    tok = train_tokenizer(os.path.join(outdir, "tokenizer.json"))
    import transformers
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    only = set(sys.argv[2:])
    for name, config in configs(tok.get_vocab_size()):
        if not only or name in only:
            make(outdir, name, config, tok)
    with open(os.path.join(outdir, "versions.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__}, f)


if __name__ == "__main__":
    main()
