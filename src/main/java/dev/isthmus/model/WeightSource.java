package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.io.HfCheckpoint;
import dev.isthmus.quant.Dequantize;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.quant.Quantize;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.random.RandomFill;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** Where a model's weights come from: a checkpoint, or random values for benchmarks and the demo. */
interface WeightSource {
    boolean contains(String name);

    /** A new host tensor (the caller closes it) holding {@code name}, which must have {@code shape}, converted to {@code dtype}. */
    Tensor tensor(String name, DType dtype, long... shape);

    /**
     * {@code name} (rows x cols) kept quantized on {@code backend}, or null when this source has no
     * quantized form of it for that backend (the default: weights are dense).
     */
    default QuantizedMatrix quantized(Backend backend, String name, long rows, long cols) {
        return null;
    }

    /**
     * The bytes {@code name} of {@code shape} takes in this source's storage format when it is
     * loaded in {@code dtype}: quantized blocks for a quantized matrix, else the dtype's elements.
     */
    default long storedBytes(String name, DType dtype, long[] shape) {
        long elements = 1;
        for (long d : shape) elements *= d;
        return elements * dtype.byteSize();
    }

    /**
     * The stacked experts {@code name} ({@code experts x rows x cols}) kept quantized on {@code backend}
     * for activations of {@code dtype}, or null when this source has no quantized form of them for that
     * backend and dtype (the default: weights are dense).
     */
    default QuantizedExperts quantizedExperts(Backend backend, DType dtype, String name, long experts, long rows, long cols) {
        return null;
    }

    static WeightSource of(HfCheckpoint checkpoint) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return checkpoint.contains(name);
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                Tensor mapped = checkpoint.tensor(name, shape);
                if (!mapped.dtype().isFloatingPoint())
                    throw new IllegalArgumentException("tensor " + name + " has dtype " + mapped.dtype().label() + "; expected a float");
                return mapped.to(dtype);
            }
        };
    }

    /**
     * {@code name} of {@code shape} in {@code dtype} on the backend (the caller closes it). A
     * checkpoint's tensor is read on the host and copied over; random weights are made where they live.
     */
    default Tensor onBackend(Backend backend, String name, DType dtype, long... shape) {
        try (Tensor host = tensor(name, dtype, shape)) {
            return backend.copyOf(host);
        }
    }

    /**
     * {@code base} with every matrix quantized to {@code type}, so that the model computes with
     * exactly the weights a {@code type} file would hold. On CUDA a matrix in a format the quantized
     * GEMV reads (q8_0, q4_0, q4_k) stays quantized on the device ({@link #quantized}); everywhere
     * else it is quantized and dequantized back on load. Which tensors are matrices: {@link #quantizes}.
     */
    static WeightSource quantized(WeightSource base, GgmlType type) {
        if (type == null || !type.quantized()) throw new IllegalArgumentException("quantize type must be a block format, got " + type);
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return base.contains(name);
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                Tensor t = base.tensor(name, DType.F32, shape);
                try (t) {
                    float[] values = t.toFloatArray();
                    if (quantizes(type, name, shape)) Dequantize.toFloat(values, type, MemorySegment.ofArray(Quantize.fromFloat(type, values)));
                    try (Tensor f32 = Tensor.fromFloats(DType.F32, values, shape)) {
                        return f32.to(dtype);
                    }
                }
            }

            @Override
            public QuantizedMatrix quantized(Backend backend, String name, long rows, long cols) {
                if (!(backend instanceof CudaBackend) || !QuantizedMatrix.kernelFormat(type) || !quantizes(type, name, new long[] {rows, cols}))
                    return null;
                try (Tensor t = base.tensor(name, DType.F32, rows, cols)) {
                    return QuantizedMatrix.quantize(backend, type, t.toFloatArray(), rows, cols);
                }
            }

            @Override
            public long storedBytes(String name, DType dtype, long[] shape) {
                return quantizes(type, name, shape) ? type.bytes(Arrays.stream(shape).reduce(1, Math::multiplyExact))
                        : WeightSource.super.storedBytes(name, dtype, shape);
            }
        };
    }

    /**
     * Whether {@link #quantized(WeightSource, GgmlType)} quantizes the tensor {@code name} of
     * {@code shape}: the tensors of two or more dimensions whose rows are whole blocks of the type.
     * Norms, MoE routers and the Mamba conv and A_log stay as they are (llama.cpp keeps those
     * unquantized too), and so does a matrix whose rows are not whole blocks (a K-quant's 256
     * elements are wider than a small model's rows).
     */
    static boolean quantizes(GgmlType type, String name, long[] shape) {
        return shape.length >= 2 && shape[shape.length - 1] % type.blockElements() == 0 && !name.contains("norm")
                && !name.endsWith("mlp.gate.weight") && !name.endsWith("router.weight") && !name.endsWith("conv1d.weight")
                && !name.endsWith("A_log");
    }

    /**
     * Random weights that keep activations of order one: matrices uniform with variance 1 / columns,
     * norm weights 1, and Mamba's parameters as Mamba initialises them (A_log = log n, D = 1, a
     * time-step bias giving dt near 0.05). Each tensor's values depend only on the seed and its name,
     * and are drawn by {@link RandomFill} on the backend that holds them: the same values on every
     * backend, without the host drawing billions of them for a large model on a GPU.
     */
    static WeightSource random(long seed) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return true;
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                return onBackend(Backend.cpu(), name, dtype, shape);
            }

            @Override
            public Tensor onBackend(Backend backend, String name, DType dtype, long... shape) {
                if (name.endsWith("A_log")) {
                    Tensor t = Tensor.allocateHost(dtype, shape);
                    long cols = shape[shape.length - 1];
                    float[] values = new float[Math.toIntExact(t.elementCount())];
                    for (int i = 0; i < values.length; i++) values[i] = (float) Math.log(i % cols + 1);
                    t.copyFrom(values);
                    if (backend instanceof CpuBackend) return t;
                    try (t) {
                        return backend.copyOf(t);
                    }
                }
                float constant = name.endsWith(".D") || name.contains("norm") ? 1f
                        : name.endsWith("dt_proj.bias") || name.endsWith("dt_bias") ? (float) Math.log(Math.expm1(0.05)) : Float.NaN;
                if (!Float.isNaN(constant)) return RandomFill.uniform(backend, dtype, seed, constant, constant, shape);
                float half = (float) Math.sqrt(3.0 / (name.contains("embed") ? 1 : shape[shape.length - 1]));
                return RandomFill.uniform(backend, dtype, seed ^ name.hashCode() * 0x9E3779B97F4A7C15L, -half, half, shape);
            }
        };
    }
}
