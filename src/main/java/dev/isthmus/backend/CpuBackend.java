package dev.isthmus.backend;

import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;

/** Runs every operation as its plain-Java CPU reference, on host tensors. */
public final class CpuBackend implements Backend {
    static final CpuBackend INSTANCE = new CpuBackend();

    private CpuBackend() {}

    @Override
    public Device device() {
        return Device.HOST;
    }

    @Override
    public String describe() {
        return "cpu (" + Runtime.getRuntime().availableProcessors() + " threads, plain-Java references)";
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        return Tensor.allocateHost(dtype, shape);
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        Checks.usable("dst", dst, Device.HOST);
        Checks.usable("src", src, Device.HOST);
        if (dst.dtype() != src.dtype() || !Arrays.equals(dst.shape(), src.shape()))
            throw new IllegalArgumentException("copy: dst " + dst + " and src " + src + " differ in dtype or shape");
        if (dst.isContiguous() && src.isContiguous()) {
            dst.segment().copyFrom(src.segment());
        } else if (src.dtype().isFloatingPoint()) {
            dst.copyFrom(src.toFloatArray());
        } else {
            dst.copyFrom(src.toLongArray());
        }
    }

    @Override
    public void poison(Tensor t) {
        Checks.usable("tensor", t, Device.HOST);
        Checks.contiguous("tensor", t);
        t.segment().fill((byte) 0xff);
    }

    @Override
    public void synchronize() {}

    @Override
    public void close() {}

    @Override
    public String toString() {
        return "CpuBackend";
    }
}
