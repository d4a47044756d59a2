package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny Llama and Mamba checkpoints run by a forward pass written here from the papers' math
 * in double, sharing no code with the model: embedding, RMSNorm, NeoX RoPE, causal GQA softmax
 * attention and SwiGLU (Llama); in_proj, causal conv + SiLU, x_proj, softplus time step, the
 * discretised recurrence h = exp(dt A) h + dt B u, y = C h + D u gated by silu(z), out_proj
 * (Mamba). The model's logits of every position must match within 1e-5.
 */
class NaiveForwardTest {
    @TempDir
    Path dir;

    static final int[] PROMPT = {5, 17, 3, 44, 9, 60, 1, 22, 30, 12, 8};

    @Test
    void llamaMatchesTheNaiveForward() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 31);
        double[][] expected;
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve("model.safetensors"))) {
            expected = llama(f, PROMPT, 2, 2, 1, 64, 1e-5, 10000);
        }
        assertMatches(checkpoint, expected);
    }

    @Test
    void mambaMatchesTheNaiveForward() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.MAMBA, 37);
        double[][] expected;
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve("model.safetensors"))) {
            expected = mamba(f, PROMPT, 2, 8, 8, 1e-5);
        }
        assertMatches(checkpoint, expected);
    }

    private static void assertMatches(Path checkpoint, double[][] expected) throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32);
             Session session = model.newSession(1, PROMPT.length);
             Tensor logits = model.forward(session, new int[] {0}, new int[][] {PROMPT}, true)) {
            double diff = 0, norm = 0;
            for (int t = 0; t < expected.length; t++)
                for (int v = 0; v < expected[t].length; v++) {
                    double d = logits.getFloat(t, v) - expected[t][v];
                    diff += d * d;
                    norm += expected[t][v] * expected[t][v];
                }
            double error = Math.sqrt(diff / norm);
            assertTrue(error < 1e-5, "relative error " + error);
        }
    }

    // ---- Llama ---------------------------------------------------------------------------------

    static double[][] llama(SafetensorsFile f, int[] ids, int layers, int heads, int kvHeads, int hd, double eps, double theta) {
        double[][] x = rows(f, "model.embed_tokens.weight", ids);
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            double[][] h = rmsnorm(x, vec(f, p + "input_layernorm.weight"), eps);
            double[][] q = linear(h, mat(f, p + "self_attn.q_proj.weight"));
            double[][] k = linear(h, mat(f, p + "self_attn.k_proj.weight"));
            double[][] v = linear(h, mat(f, p + "self_attn.v_proj.weight"));
            rope(q, heads, hd, theta);
            rope(k, kvHeads, hd, theta);
            double[][] attn = new double[ids.length][heads * hd];
            for (int head = 0; head < heads; head++) {
                int kvh = head / (heads / kvHeads);
                for (int t = 0; t < ids.length; t++) {
                    double[] s = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int u = 0; u <= t; u++) {
                        for (int d = 0; d < hd; d++) s[u] += q[t][head * hd + d] * k[u][kvh * hd + d];
                        s[u] /= Math.sqrt(hd);
                        max = Math.max(max, s[u]);
                    }
                    for (int u = 0; u <= t; u++) sum += s[u] = Math.exp(s[u] - max);
                    for (int u = 0; u <= t; u++)
                        for (int d = 0; d < hd; d++) attn[t][head * hd + d] += s[u] / sum * v[u][kvh * hd + d];
                }
            }
            add(x, linear(attn, mat(f, p + "self_attn.o_proj.weight")));
            h = rmsnorm(x, vec(f, p + "post_attention_layernorm.weight"), eps);
            double[][] g = linear(h, mat(f, p + "mlp.gate_proj.weight")), up = linear(h, mat(f, p + "mlp.up_proj.weight"));
            for (int t = 0; t < g.length; t++)
                for (int j = 0; j < g[t].length; j++) g[t][j] = silu(g[t][j]) * up[t][j];
            add(x, linear(g, mat(f, p + "mlp.down_proj.weight")));
        }
        return linear(rmsnorm(x, vec(f, "model.norm.weight"), eps), mat(f, "lm_head.weight"));
    }

    /** NeoX RoPE: pair (j, j + hd/2) of each head rotated by t * theta^(-2j/hd). */
    static void rope(double[][] x, int heads, int hd, double theta) {
        for (int t = 0; t < x.length; t++)
            for (int head = 0; head < heads; head++)
                for (int j = 0; j < hd / 2; j++) {
                    double angle = t * Math.pow(theta, -2.0 * j / hd);
                    int a = head * hd + j, b = a + hd / 2;
                    double xa = x[t][a], xb = x[t][b];
                    x[t][a] = xa * Math.cos(angle) - xb * Math.sin(angle);
                    x[t][b] = xb * Math.cos(angle) + xa * Math.sin(angle);
                }
    }

    // ---- Mamba ---------------------------------------------------------------------------------

    static double[][] mamba(SafetensorsFile f, int[] ids, int layers, int state, int rank, double eps) {
        double[][] x = rows(f, "backbone.embeddings.weight", ids);
        int length = ids.length;
        for (int l = 0; l < layers; l++) {
            String p = "backbone.layers." + l + ".mixer.";
            double[][] h = rmsnorm(x, vec(f, "backbone.layers." + l + ".norm.weight"), eps);
            double[][] xz = linear(h, mat(f, p + "in_proj.weight"));
            int inner = xz[0].length / 2;
            double[][] conv = mat(f, p + "conv1d.weight");  // (inner, width) after the (inner, 1, width) reshape
            double[] convBias = vec(f, p + "conv1d.bias");
            int width = conv[0].length;
            double[][] u = new double[length][inner];
            for (int t = 0; t < length; t++)
                for (int d = 0; d < inner; d++) {
                    double s = convBias[d];
                    for (int w = 0; w < width; w++) {
                        int src = t - (width - 1) + w;
                        if (src >= 0) s += conv[d][w] * xz[src][d];
                    }
                    u[t][d] = silu(s);
                }
            double[][] proj = linear(u, mat(f, p + "x_proj.weight"));
            double[][] dtProj = mat(f, p + "dt_proj.weight"), aLog = mat(f, p + "A_log");
            double[] dtBias = vec(f, p + "dt_proj.bias"), skip = vec(f, p + "D");
            double[][] y = new double[length][inner];
            double[][] ssm = new double[inner][state];
            for (int t = 0; t < length; t++)
                for (int d = 0; d < inner; d++) {
                    double dt = dtBias[d];
                    for (int r = 0; r < rank; r++) dt += dtProj[d][r] * proj[t][r];
                    dt = Math.log1p(Math.exp(dt));
                    double out = skip[d] * u[t][d];
                    for (int n = 0; n < state; n++) {
                        ssm[d][n] = Math.exp(-dt * Math.exp(aLog[d][n])) * ssm[d][n] + dt * proj[t][rank + n] * u[t][d];
                        out += proj[t][rank + state + n] * ssm[d][n];
                    }
                    y[t][d] = out * silu(xz[t][inner + d]);
                }
            add(x, linear(y, mat(f, p + "out_proj.weight")));
        }
        double[][] embed = mat(f, "backbone.embeddings.weight");
        return linear(rmsnorm(x, vec(f, "backbone.norm_f.weight"), eps), embed);
    }

    // ---- helpers -------------------------------------------------------------------------------

    static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    static double[][] rmsnorm(double[][] x, double[] w, double eps) {
        double[][] out = new double[x.length][x[0].length];
        for (int t = 0; t < x.length; t++) {
            double ms = 0;
            for (double v : x[t]) ms += v * v / x[t].length;
            for (int j = 0; j < w.length; j++) out[t][j] = x[t][j] / Math.sqrt(ms + eps) * w[j];
        }
        return out;
    }

    /** x W^T with W (out, in). */
    static double[][] linear(double[][] x, double[][] w) {
        double[][] out = new double[x.length][w.length];
        for (int t = 0; t < x.length; t++)
            for (int o = 0; o < w.length; o++)
                for (int i = 0; i < w[o].length; i++) out[t][o] += x[t][i] * w[o][i];
        return out;
    }

    static void add(double[][] x, double[][] y) {
        for (int t = 0; t < x.length; t++)
            for (int j = 0; j < x[t].length; j++) x[t][j] += y[t][j];
    }

    static double[][] rows(SafetensorsFile f, String name, int[] ids) {
        double[][] table = mat(f, name), out = new double[ids.length][];
        for (int t = 0; t < ids.length; t++) out[t] = table[ids[t]].clone();
        return out;
    }

    /** A tensor as rows of its last dimension (leading dimensions flattened). */
    static double[][] mat(SafetensorsFile f, String name) {
        Tensor t = f.tensor(name);
        float[] values = t.toFloatArray();
        int cols = (int) t.dim(-1), rows = values.length / cols;
        double[][] out = new double[rows][cols];
        for (int i = 0; i < values.length; i++) out[i / cols][i % cols] = values[i];
        return out;
    }

    static double[] vec(SafetensorsFile f, String name) {
        return mat(f, name)[0];
    }
}
