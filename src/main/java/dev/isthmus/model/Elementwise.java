package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * The element-wise steps of a decoder model between its kernels: the embedding lookup, a bias
 * added to every row (the q/k/v biases of Qwen2), and the SwiGLU product of a dense FFN (all
 * tensors contiguous and of one float dtype, f32, f16 or bf16; arithmetic in fp32); and greedy
 * sampling on the device, a row-wise argmax of the f32 logits.
 */
public final class Elementwise {
    private Elementwise() {}

    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    /** out[t, :] = table[ids[t], :]; out (T, H), table (V, H), ids i32 (T). Host ids are range-checked. */
    public static void embedding(Backend backend, Tensor out, Tensor table, Tensor ids) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        floats("table", table, table, backend);
        Checks.rank("table", table, 2);
        Checks.usable("ids", ids, backend.device());
        Checks.dtypeIn("ids", ids, Set.of(DType.I32));
        Checks.rank("ids", ids, 1);
        Checks.contiguous("ids", ids);
        floats("out", out, table, backend, ids.dim(0), table.dim(1));
        if (ids.isHost()) {
            long[] values = ids.toLongArray();
            for (int t = 0; t < values.length; t++)
                if (values[t] < 0 || values[t] >= table.dim(0))
                    throw new IllegalArgumentException("ids[" + t + "] = " + values[t] + " is outside the vocabulary of " + table.dim(0));
        }
        if (out.elementCount() == 0) return; // no ids or no columns (a zero-size device tensor has no address to launch on)
        switch (backend) {
            case CpuBackend cpu -> ElementwiseReference.embedding(out, table, ids);
            case CudaBackend cuda -> ElementwiseCuda.embedding(cuda, out, table, ids);
        }
    }

    /** out[r, c] = x[r, c] + bias[c]; x and out (R, C), bias (C); out may be x. */
    public static void addBias(Backend backend, Tensor out, Tensor x, Tensor bias) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        floats("x", x, x, backend);
        Checks.rank("x", x, 2);
        floats("bias", bias, x, backend, x.dim(1));
        floats("out", out, x, backend, x.shape());
        if (x.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> ElementwiseReference.addBias(out, x, bias);
            case CudaBackend cuda -> ElementwiseCuda.addBias(cuda, out, x, bias);
        }
    }

    /** out = silu(gate) * up element-wise, silu(g) = g / (1 + e^-g); out may be gate or up. */
    public static void siluMul(Backend backend, Tensor out, Tensor gate, Tensor up) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        floats("gate", gate, gate, backend);
        Checks.rankAtLeast("gate", gate, 1);
        floats("up", up, gate, backend, gate.shape());
        floats("out", out, gate, backend, gate.shape());
        if (gate.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> ElementwiseReference.siluMul(out, gate, up);
            case CudaBackend cuda -> ElementwiseCuda.siluMul(cuda, out, gate, up);
        }
    }

    /**
     * Greedy sampling on the backend: out[r] = the column of row r's largest logit, the lowest on
     * ties, NaNs ignored (a row of only NaNs gives 0), as {@link Sampler} picks greedily on the
     * host. out i32 (R), logits f32 (R, C).
     */
    public static void argmax(Backend backend, Tensor out, Tensor logits) {
        checkLogits(backend, logits);
        Checks.usable("out", out, backend.device());
        if (out.dtype() != DType.I32) throw new IllegalArgumentException("out must be i32, has " + out.dtype().label());
        Checks.shape("out", out, logits.dim(0));
        Checks.contiguous("out", out);
        if (logits.dim(0) == 0) return;
        switch (backend) {
            case CpuBackend cpu -> ElementwiseReference.argmax(out, logits);
            case CudaBackend cuda -> ElementwiseCuda.argmax(cuda, out, logits);
        }
    }

    /** What the samplers take: f32 logits (rows, cols) on the backend, contiguous, rows and cols within int range. */
    static void checkLogits(Backend backend, Tensor logits) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        Checks.usable("logits", logits, backend.device());
        if (logits.dtype() != DType.F32) throw new IllegalArgumentException("logits must be f32, has " + logits.dtype().label());
        Checks.rank("logits", logits, 2);
        Checks.contiguous("logits", logits);
        if (logits.dim(1) < 1 || logits.dim(1) > Integer.MAX_VALUE || logits.dim(0) > Integer.MAX_VALUE)
            throw new IllegalArgumentException("logits is " + logits + "; rows up to 2^31 - 1 and 1 to 2^31 - 1 columns");
    }

    /** Usable, contiguous, a float dtype equal to {@code like}'s, and of {@code shape} when given. */
    private static void floats(String name, Tensor t, Tensor like, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, DTYPES);
        if (t != like) Checks.sameDtype(name, t, "the input", like);
        if (shape.length > 0) Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }
}
