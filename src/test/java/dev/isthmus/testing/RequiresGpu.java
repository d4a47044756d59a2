package dev.isthmus.testing;

import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.HostEmulation;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Disables a test when CUDA is not usable here, and says why once on standard output. Under the
 * host emulation the tests run, and it says once that they do not run on a GPU.
 */
public final class RequiresGpu implements ExecutionCondition {
    private static final AtomicBoolean ANNOUNCED = new AtomicBoolean();

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        Cuda.Availability cuda = Cuda.availability();
        if (cuda.available() && HostEmulation.enabled()) {
            if (ANNOUNCED.compareAndSet(false, true)) System.out.println("[gpu tests] running under host emulation, not on a GPU");
            return ConditionEvaluationResult.enabled("host emulation");
        }
        if (cuda.available()) return ConditionEvaluationResult.enabled("CUDA device available");
        String reason = "no usable CUDA device: " + cuda.reason();
        if (ANNOUNCED.compareAndSet(false, true)) System.out.println("[gpu tests skipped] " + reason);
        return ConditionEvaluationResult.disabled(reason);
    }

    /** Skips the rest of a test under the host emulation: {@code what} (JCuda itself, cuBLAS) needs a real device. */
    public static void assumeRealGpu(String what) {
        Assumptions.assumeFalse(HostEmulation.enabled(), "host emulation: " + what + " needs a real GPU");
    }
}
