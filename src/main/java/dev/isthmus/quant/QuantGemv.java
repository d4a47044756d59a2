package dev.isthmus.quant;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * The product with a quantized weight: {@code out (m x n) = x (m x k) W^T} with W a
 * {@link QuantizedMatrix} of n rows and k columns. On CUDA, up to {@link #MAX_ROWS} rows (decode
 * steps and small batches; f32 activations take no more) run the GEMV, which dequantizes W in
 * registers while streaming its bytes (cuda/quant_gemv.cuh); more rows of f16 or bf16, any number
 * of them (prompts), take the tensor-core tiles, which dequantize W into f16/bf16 tiles in shared
 * memory (cuda/quant_tile.cuh), so W's values there are rounded once to the activations' dtype. The CPU
 * reference dequantizes W by the format's definition and sums in double. x and out share one dtype
 * (f32, f16, bf16), contiguous; fp32 accumulation on the GPU. Given a {@link GemmWorkspace}, the
 * f16/bf16 GEMV may share each 128 output features' K out over several blocks (so that any
 * shape streams its weights through every SM) and the tiles of up to 64 rows split K; each adds
 * its parts in a fixed order, so results repeat bitwise on one device.
 */
public final class QuantGemv {
    private QuantGemv() {}

    /** The most rows of f32 activations (the GEMV); f16 and bf16 take any number ({@link #maxRows}). */
    public static final int MAX_ROWS = 16;
    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    /** The most rows of activations of {@code dtype} that one call takes. */
    public static long maxRows(DType dtype) {
        return dtype == DType.F32 ? MAX_ROWS : Integer.MAX_VALUE;
    }

    /** {@code out = x W^T} without a split-K workspace. */
    public static void apply(Backend backend, Tensor out, Tensor x, QuantizedMatrix w) {
        apply(backend, out, x, w, null);
    }

    /** {@code out = x W^T} with the split-K workspace {@code ws} (or null: no split). */
    public static void apply(Backend backend, Tensor out, Tensor x, QuantizedMatrix w, GemmWorkspace ws) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (ws != null) ws.checkOn(backend, "ws");
        Checks.notNull("w", w);
        Checks.usable("w.bytes", w.bytes(), backend.device());
        Checks.usable("x", x, backend.device());
        Checks.dtypeIn("x", x, DTYPES);
        Checks.rank("x", x, 2);
        Checks.contiguous("x", x);
        long m = x.dim(0);
        if (m < 1 || m > maxRows(x.dtype()))
            throw new IllegalArgumentException("x has " + m + " rows; the quantized product takes 1 to " + maxRows(x.dtype()) + " rows of " + x.dtype().label());
        Checks.shape("x", x, m, w.cols());
        Checks.usable("out", out, backend.device());
        Checks.sameDtype("out", out, "x", x);
        Checks.shape("out", out, m, w.rows());
        Checks.contiguous("out", out);
        Checks.disjoint("out", out, "x", x);
        switch (backend) {
            case CpuBackend cpu -> QuantGemvReference.apply(out, x, w);
            case CudaBackend cuda -> {
                if (x.address() % 16 != 0) throw new IllegalArgumentException("x must be 16-byte aligned for the quantized GEMV (a view at an odd offset is not)");
                QuantGemvCuda.launch(cuda, out, x, w, ws);
            }
        }
    }
}
