package dev.isthmus.cuda;

/**
 * A failure reported by CUDA (or by CUDA being absent): carries the CUDA error name, such as
 * {@code cudaErrorNoDevice}, and its text, so the message says what the runtime said.
 */
public class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String errorName;

    public CudaException(String message, String errorName) {
        super(message);
        this.errorName = errorName;
    }

    public CudaException(String message, String errorName, Throwable cause) {
        super(message, cause);
        this.errorName = errorName;
    }

    /** The CUDA error name (e.g. cudaErrorInsufficientDriver), or a short tag when none applies. */
    public String errorName() {
        return errorName;
    }
}
