package dev.isthmus.scan;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Tensor;

/** The state a sequence of no steps leaves behind, without a kernel launch (empty inputs have no address to give one). */
public final class ScanStates {
    private ScanStates() {}

    /** finalState = initialState, or zeros without one; nothing when there is no final state to write. */
    public static void carry(Backend backend, Tensor finalState, Tensor initialState) {
        if (finalState == null || finalState.elementCount() == 0 || finalState == initialState) return;
        if (initialState != null) {
            backend.copy(finalState, initialState);
            return;
        }
        try (Tensor zeros = Tensor.allocateHost(finalState.dtype(), finalState.shape())) {
            backend.copy(finalState, zeros);
        }
    }
}
