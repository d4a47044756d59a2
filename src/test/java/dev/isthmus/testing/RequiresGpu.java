package dev.isthmus.testing;

import dev.isthmus.cuda.Cuda;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/** Disables a test when CUDA is not usable here, and says why once on standard output. */
public final class RequiresGpu implements ExecutionCondition {
    private static final AtomicBoolean ANNOUNCED = new AtomicBoolean();

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        Cuda.Availability cuda = Cuda.availability();
        if (cuda.available()) return ConditionEvaluationResult.enabled("CUDA device available");
        String reason = "no usable CUDA device: " + cuda.reason();
        if (ANNOUNCED.compareAndSet(false, true)) System.out.println("[gpu tests skipped] " + reason);
        return ConditionEvaluationResult.disabled(reason);
    }
}
