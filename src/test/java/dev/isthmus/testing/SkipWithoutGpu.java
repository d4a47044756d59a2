package dev.isthmus.testing;

import dev.isthmus.cuda.Cuda;
import net.jqwik.api.lifecycle.LifecycleContext;
import net.jqwik.api.lifecycle.SkipExecutionHook;

/** {@link RequiresGpu} for jqwik properties: skipped with the reason when CUDA is not usable here. */
public final class SkipWithoutGpu implements SkipExecutionHook {
    @Override
    public SkipResult shouldBeSkipped(LifecycleContext context) {
        Cuda.Availability cuda = Cuda.availability();
        return cuda.available() ? SkipResult.doNotSkip() : SkipResult.skip("no usable CUDA device: " + cuda.reason());
    }
}
