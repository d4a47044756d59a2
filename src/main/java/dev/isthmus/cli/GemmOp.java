package dev.isthmus.cli;

import dev.isthmus.blas.Gemm;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op gemm`: {@link Gemm}, c = alpha * op(a) * op(b) + beta * c, row-major. */
final class GemmOp implements Op {
    @Override
    public String name() {
        return "gemm";
    }

    @Override
    public String description() {
        return "c = alpha * op(a) * op(b) + beta * c, row-major, op(x) = x or its transpose, fp32 accumulation";
    }

    @Override
    public List<TensorSpec> inputs() {
        return List.of(
                new TensorSpec("a", "(M, K); (K, M) with transpose_a", FLOATS, false, "its dtype is the op's"),
                new TensorSpec("b", "(K, N); (N, K) with transpose_b", FLOATS, false, "converted to a's dtype"),
                new TensorSpec("c", "(M, N)", FLOATS, true, "added with beta; kept as f32, else converted to a's dtype"));
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(
                new OptionSpec("alpha", OptionType.FLOAT, "1", "scales op(a) * op(b)"),
                new OptionSpec("beta", OptionType.FLOAT, null, "scales c; default 1 if c is given, else 0"),
                new OptionSpec("transpose_a", OptionType.BOOLEAN, "false", "a is stored (K, M)"),
                new OptionSpec("transpose_b", OptionType.BOOLEAN, "false", "b is stored (N, K), as a PyTorch Linear weight"));
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(new TensorSpec("c", "(M, N)", Set.of(), false, "the input c's dtype if given, else a's"));
    }

    /** a and b share a's dtype; c may be f32 (the accumulator's) or a's. */
    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        DType a = given.get("a");
        Map<String, DType> needed = new HashMap<>();
        for (String name : given.keySet()) needed.put(name, a);
        if (given.get("c") == DType.F32) needed.put("c", DType.F32);
        return needed;
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor a = in.get("a"), b = in.get("b"), c = in.get("c");
        boolean transposeA = options.getBoolean("transpose_a"), transposeB = options.getBoolean("transpose_b");
        float alpha = options.getFloat("alpha");
        float beta = options.isSet("beta") ? options.getFloat("beta") : c == null ? 0f : 1f;
        Checks.rank("a", a, 2);
        Checks.rank("b", b, 2);
        long m = a.dim(transposeA ? 1 : 0), k = a.dim(transposeA ? 0 : 1);
        long kb = b.dim(transposeB ? 1 : 0), n = b.dim(transposeB ? 0 : 1);
        if (kb != k)
            throw new IllegalArgumentException("b has shape " + Arrays.toString(b.shape()) + ", but a of shape " + Arrays.toString(a.shape())
                    + (transposeA ? " (transpose_a)" : "") + " has K = " + k + "; b must be " + (transposeB ? "(N, K)" : "(K, N)"));
        if (c != null) Checks.shape("c", c, m, n);
        if (beta != 0 && c == null) throw new IllegalArgumentException("option 'beta' is " + beta + " but there is no input c to scale");

        DType cType = c == null ? a.dtype() : c.dtype();
        // With beta = 0 the product only writes c, so it starts poisoned like any output; else it starts as the input c.
        // An f32 c of f16/bf16 inputs holds fp32 sums whose order differs between cuBLAS and the
        // reference: a few fp32 roundings per term, so 1e-4 rather than the f32 storage bound.
        double bound = cType == DType.F32 && a.dtype() != DType.F32 ? 1e-4 : Compare.boundFor(cType);
        Output out = new Output("c", cType, new long[] {m, n}, beta == 0 ? null : "c", bound);
        Kernel kernel = (backend, i, o) -> Gemm.gemm(backend, o.get("c"), i.get("a"), transposeA, i.get("b"), transposeB, alpha, beta);
        // a and b read once, c written (and read first when beta != 0); 2 FLOPs per multiply-add.
        double bytes = (double) (m * k + k * n) * a.dtype().byteSize() + (double) m * n * cType.byteSize() * (beta == 0 ? 1 : 2);
        double flops = 2.0 * m * n * k;
        return new Call(List.of(out), kernel, "gemm", m + "x" + n + "x" + k, a.dtype(), bytes, flops);
    }
}
