package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One kernel as `isthmus op NAME` runs it: the tensors it reads by name, its options, the tensors
 * it writes, and how to run it on a backend. The command does everything else — reading the
 * file, converting dtypes, copying to the device, the CPU reference run of --check (the same
 * {@link Kernel} on {@link Backend#cpu()}), timing for --bench, writing the outputs — so adding a
 * kernel is one class implementing this and one line in {@link Ops#ALL}.
 */
interface Op {
    /** The floating-point dtypes every kernel takes. */
    Set<DType> FLOATS = Set.of(DType.F32, DType.F16, DType.BF16);

    /** The name on the command line, e.g. "rmsnorm". */
    String name();

    /** One line saying what it computes. */
    String description();

    /** The tensors it reads, by the parameter names of the kernel's math. */
    List<TensorSpec> inputs();

    List<OptionSpec> options();

    /** The tensors it writes (dtypes left empty: {@link TensorSpec#about} says which). */
    List<TensorSpec> outputs();

    /**
     * The dtype the kernel needs for each given input (keys: the inputs present in the file, with
     * the dtype they have there, each already one of its spec's dtypes). An input whose dtype
     * differs is converted before {@link #prepare}, and the command says so on stderr.
     */
    default Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return given;
    }

    /** Every given input in the dtype of input {@code lead}, for kernels that compute in one dtype. */
    static Map<String, DType> allLike(Map<String, DType> given, String lead) {
        Map<String, DType> needed = new HashMap<>();
        for (String name : given.keySet()) needed.put(name, given.get(lead));
        return needed;
    }

    /**
     * Checks the inputs (host tensors in the kernel's dtypes; optional ones may be absent) against
     * each other and the options, throwing an IllegalArgumentException that names the tensor or
     * option at fault, and returns what to run.
     */
    Call prepare(Map<String, Tensor> inputs, OpOptions options);

    /** A tensor of an op: its name, its shape in words, the dtypes accepted from the file. */
    record TensorSpec(String name, String shape, Set<DType> dtypes, boolean optional, String about) {}

    enum OptionType { FLOAT, INT, BOOLEAN }

    /** An option set with --set name=value; {@code defaultValue} null means "depends", explained in {@code about}. */
    record OptionSpec(String name, OptionType type, String defaultValue, String about) {}

    /**
     * One output to allocate; {@code initialFrom} names the input it starts as a copy of (null:
     * written only); {@code bound} is the relative error --check allows, by default
     * {@link Compare#boundFor} of its dtype.
     */
    record Output(String name, DType dtype, long[] shape, String initialFrom, double bound) {
        Output(String name, DType dtype, long[] shape, String initialFrom) {
            this(name, dtype, shape, initialFrom, Compare.boundFor(dtype));
        }
    }

    /**
     * Runs the op on {@code backend}, reading inputs and writing outputs that are on its device. A
     * kernel that keeps something between runs (a KV batch's device tables, a workspace) frees it
     * in {@link #close}, which the command calls once after the last run.
     */
    interface Kernel extends AutoCloseable {
        void run(Backend backend, Map<String, Tensor> inputs, Map<String, Tensor> outputs);

        /**
         * The bytes the timed runs on {@code backend} moved, for work whose traffic depends on the
         * data (which MoE experts were chosen); by default {@code planned}, the {@link Call}'s count.
         */
        default double bytesMoved(Backend backend, double planned) {
            return planned;
        }

        @Override
        default void close() {}
    }

    /**
     * A prepared run: the outputs, the kernel, and for --bench the row it is reported under
     * (kernel name, shape and dtype as the GPU benchmarks name them) with the bytes the work must
     * move and the FLOPs it must do.
     */
    record Call(List<Output> outputs, Kernel kernel, String benchKernel, String benchShape, DType benchDtype, double bytes,
                double flops) {}
}
