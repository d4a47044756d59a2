package dev.isthmus.tensor;

/** Where a tensor's bytes live: host memory, or the memory of one CUDA device. */
public record Device(Kind kind, int ordinal) {
    public enum Kind { HOST, CUDA }

    public static final Device HOST = new Device(Kind.HOST, -1);

    public Device {
        if (kind == Kind.HOST && ordinal != -1) throw new IllegalArgumentException("host device has no ordinal");
        if (kind == Kind.CUDA && ordinal < 0) throw new IllegalArgumentException("CUDA device ordinal must be >= 0, got " + ordinal);
    }

    public static Device cuda(int ordinal) {
        return new Device(Kind.CUDA, ordinal);
    }

    public boolean isHost() {
        return kind == Kind.HOST;
    }

    @Override
    public String toString() {
        return isHost() ? "cpu" : "cuda:" + ordinal;
    }
}
