package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.io.GgufFile;
import dev.isthmus.quant.Dequantize;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A GGUF file's tensors under the Hugging Face names the layers ask for. llama.cpp's converters
 * rename every tensor ({@code model.layers.3.self_attn.q_proj.weight} is {@code blk.3.attn_q.weight})
 * and store three of them differently, undone here:
 * <ul>
 *   <li>the llama architecture's q and k projections have the rows of each head reordered for
 *       ggml's interleaved RoPE: GGUF row {@code h d + 2 i + j} is Hugging Face row
 *       {@code h d + j d/2 + i} (head h of width d, pair i, half j);
 *   <li>MoE experts are stacked as {@code ffn_gate_exps}, {@code ffn_up_exps} (E, I, H) and
 *       {@code ffn_down_exps} (E, H, I); the layers take gate and up as one (E, 2I, H);
 *   <li>Mamba keeps {@code ssm_a} = A = -exp(A_log) (read back as A_log = log(-A)) and its conv
 *       weight as (D, W) without the middle 1.
 * </ul>
 * Every tensor is dequantized on the host by the format's CPU reference to fp32, then converted,
 * except the projection matrices on CUDA in a format the quantized kernels read ({@link #quantized})
 * and, for f16 and bf16 activations, the MoE experts ({@link #quantizedExperts}).
 */
final class GgufWeights implements WeightSource {
    private final GgufFile file;
    private final ModelConfig config;
    private final boolean permuteQk;

    GgufWeights(GgufFile file, ModelConfig config) {
        this.file = file;
        this.config = config;
        this.permuteQk = "llama".equals(file.string("general.architecture"));
    }

    private static final Pattern LAYER = Pattern.compile("(?:model|backbone)\\.layers\\.(\\d+)\\.(.+)");

    /** The GGUF name of a Hugging Face name, or null when the format has no such tensor. */
    static String ggufName(String hf) {
        switch (hf) {
            case "model.embed_tokens.weight", "backbone.embeddings.weight" -> {
                return "token_embd.weight";
            }
            case "model.norm.weight", "backbone.norm_f.weight" -> {
                return "output_norm.weight";
            }
            case "lm_head.weight" -> {
                return "output.weight";
            }
            default -> {}
        }
        Matcher m = LAYER.matcher(hf);
        if (!m.matches()) return null;
        String rest = m.group(2), base = "blk." + m.group(1) + ".";
        String suffix = rest.endsWith(".bias") ? ".bias" : ".weight";
        String module = rest.endsWith(".weight") || rest.endsWith(".bias") ? rest.substring(0, rest.lastIndexOf('.')) : rest;
        String gguf = switch (module) {
            case "input_layernorm", "norm" -> "attn_norm";
            case "post_attention_layernorm" -> "ffn_norm";
            case "self_attn.q_proj" -> "attn_q";
            case "self_attn.k_proj" -> "attn_k";
            case "self_attn.v_proj" -> "attn_v";
            case "self_attn.o_proj" -> "attn_output";
            case "mlp.gate_proj" -> "ffn_gate";
            case "mlp.up_proj" -> "ffn_up";
            case "mlp.down_proj" -> "ffn_down";
            case "mlp.gate" -> "ffn_gate_inp";
            case "mlp.experts.gate_up_proj" -> "ffn_gate_exps";
            case "mlp.experts.down_proj" -> "ffn_down_exps";
            case "mixer.in_proj" -> "ssm_in";
            case "mixer.conv1d" -> "ssm_conv1d";
            case "mixer.x_proj" -> "ssm_x";
            case "mixer.dt_proj" -> "ssm_dt";
            case "mixer.out_proj" -> "ssm_out";
            case "mixer.A_log" -> "ssm_a";
            case "mixer.D" -> "ssm_d";
            default -> null;
        };
        if (gguf == null) return null;
        if (module.equals("mixer.A_log") || module.equals("mixer.D")) return base + gguf; // no suffix in either naming
        return base + gguf + (module.startsWith("mlp.experts.") ? ".weight" : suffix);
    }

    @Override
    public boolean contains(String name) {
        String g = ggufName(name);
        return g != null && file.contains(g);
    }

    @Override
    public Tensor tensor(String name, DType dtype, long... shape) {
        String g = ggufName(name);
        if (g == null || !file.contains(g)) throw new IllegalArgumentException(file.path() + " has no tensor for " + name
                + (g == null ? "" : " (" + g + ")"));
        float[] values;
        long[] stored;
        if (g.endsWith("ffn_gate_exps.weight")) {
            String up = g.replace("ffn_gate_exps", "ffn_up_exps");
            values = stackGateUp(read(g), read(up), file.info(g).shape());
            long[] s = file.info(g).shape();
            stored = new long[] {s[0], 2 * s[1], s[2]};
        } else {
            values = read(g);
            stored = file.info(g).shape();
        }
        if (g.endsWith("ssm_conv1d.weight") && stored.length == 2) stored = new long[] {stored[0], 1, stored[1]};
        if (g.endsWith("ssm_a")) for (int i = 0; i < values.length; i++) values[i] = (float) Math.log(-values[i]);
        if (!Arrays.equals(stored, shape))
            throw new IllegalArgumentException("tensor " + g + " (" + name + ") has shape " + Arrays.toString(stored) + "; the config implies "
                    + Arrays.toString(shape));
        if (permuteQk && (g.endsWith("attn_q.weight") || g.endsWith("attn_k.weight") || g.endsWith("attn_q.bias") || g.endsWith("attn_k.bias")))
            values = unpermuteRope(values, config.headDim(), shape.length == 2 ? shape[1] : 1);
        try (Tensor f32 = Tensor.fromFloats(DType.F32, values, shape)) {
            return f32.to(dtype);
        }
    }

    /**
     * On CUDA, a Q8_0, Q4_0 or Q4_K projection matrix stays quantized: its bytes go to the device
     * as the file holds them (rows reordered for the llama architecture's q and k), and the quantized
     * GEMV computes with them. On the CPU, and for any other type, the matrix is dequantized on load.
     */
    @Override
    public QuantizedMatrix quantized(Backend backend, String name, long rows, long cols) {
        String g = ggufName(name);
        if (!(backend instanceof CudaBackend) || g == null || !file.contains(g)) return null;
        GgufFile.TensorInfo info = file.info(g);
        if (!QuantizedMatrix.kernelFormat(info.type()) || !Arrays.equals(info.shape(), new long[] {rows, cols})) return null;
        MemorySegment bytes = file.bytes(g);
        if (permuteQk && (g.endsWith("attn_q.weight") || g.endsWith("attn_k.weight"))) {
            long rowBytes = info.type().bytes(cols);
            MemorySegment reordered = MemorySegment.ofArray(new byte[Math.toIntExact(bytes.byteSize())]);
            for (int r = 0; r < rows; r++)
                MemorySegment.copy(bytes, r * rowBytes, reordered, hfRow(r, config.headDim()) * rowBytes, rowBytes);
            bytes = reordered;
        }
        return QuantizedMatrix.fromGgml(backend, info.type(), rows, cols, bytes);
    }

    /** The file's bytes of the tensor behind {@code name} (gate and up both, for stacked experts). */
    @Override
    public long storedBytes(String name, DType dtype, long[] shape) {
        String g = ggufName(name);
        if (g == null || !file.contains(g)) return WeightSource.super.storedBytes(name, dtype, shape);
        long bytes = file.info(g).type().bytes(file.info(g).elements());
        if (g.endsWith("ffn_gate_exps.weight")) {
            GgufFile.TensorInfo up = file.info(g.replace("ffn_gate_exps", "ffn_up_exps"));
            bytes += up.type().bytes(up.elements());
        }
        return bytes;
    }

    /**
     * On CUDA with f16 or bf16 activations, a MoE layer's stacked experts in a format the quantized
     * expert GEMMs read stay quantized: gate and up ({@code ffn_gate_exps}, {@code ffn_up_exps}, one
     * format) as one E x (2I, H) stack, down as E x (H, I). Otherwise they are dequantized on load.
     */
    @Override
    public QuantizedExperts quantizedExperts(Backend backend, DType dtype, String name, long experts, long rows, long cols) {
        String g = ggufName(name);
        if (!(backend instanceof CudaBackend) || dtype == DType.F32 || g == null || !file.contains(g)) return null;
        GgufFile.TensorInfo info = file.info(g);
        if (!QuantizedMatrix.kernelFormat(info.type()) || info.shape()[info.shape().length - 1] % info.type().blockElements() != 0) return null;
        if (g.endsWith("ffn_gate_exps.weight")) {
            String up = g.replace("ffn_gate_exps", "ffn_up_exps");
            if (!file.contains(up) || file.info(up).type() != info.type() || !Arrays.equals(info.shape(), new long[] {experts, rows / 2, cols})
                    || !Arrays.equals(file.info(up).shape(), info.shape()))
                return null;
            return QuantizedExperts.fromGgmlPair(backend, info.type(), experts, rows / 2, cols, file.bytes(g), file.bytes(up));
        }
        if (!Arrays.equals(info.shape(), new long[] {experts, rows, cols})) return null;
        return QuantizedExperts.fromGgml(backend, info.type(), experts, rows, cols, file.bytes(g));
    }

    private float[] read(String g) {
        GgufFile.TensorInfo info = file.info(g);
        if (info.elements() > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("tensor " + g + " has " + info.elements() + " elements; at most 2^31 are read on the host");
        float[] values = new float[(int) info.elements()];
        Dequantize.toFloat(values, info.type(), file.bytes(g));
        return values;
    }

    /** (E, I, H) gate and up into one (E, 2I, H), gate first in each expert. */
    private static float[] stackGateUp(float[] gate, float[] up, long[] shape) {
        int experts = (int) shape[0], block = (int) (shape[1] * shape[2]);
        float[] out = new float[2 * gate.length];
        for (int e = 0; e < experts; e++) {
            System.arraycopy(gate, e * block, out, 2 * e * block, block);
            System.arraycopy(up, e * block, out, (2 * e + 1) * block, block);
        }
        return out;
    }

    /** Undoes the converter's row order for interleaved RoPE (see the class comment); rows of {@code cols} values. */
    static float[] unpermuteRope(float[] gguf, int headDim, long cols) {
        int c = (int) cols, rows = gguf.length / c;
        float[] hf = new float[gguf.length];
        for (int r = 0; r < rows; r++) System.arraycopy(gguf, r * c, hf, hfRow(r, headDim) * c, c);
        return hf;
    }

    /** The Hugging Face row of GGUF row {@code r} of a q or k projection (llama architecture). */
    static int hfRow(int r, int headDim) {
        int head = r / headDim, i = (r % headDim) / 2, j = r % 2;
        return head * headDim + j * (headDim / 2) + i;
    }
}
