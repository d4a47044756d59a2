package dev.isthmus.blas;

import dev.isthmus.backend.CudaBackend;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * One library handle per backend, made on first use and destroyed when the backend closes. A
 * cuBLAS handle belongs to the device current when it was made and carries one stream, which is
 * what a backend is (one device, one stream, used by one thread at a time), so keying by backend
 * gives each device and stream its own handle.
 */
final class BackendHandles<H> {
    private final Map<CudaBackend, H> handles = new WeakHashMap<>();
    private final Function<CudaBackend, H> create;
    private final Consumer<H> destroy;

    /** {@code create} makes a handle bound to the backend's stream; {@code destroy} releases one. */
    BackendHandles(Function<CudaBackend, H> create, Consumer<H> destroy) {
        this.create = create;
        this.destroy = destroy;
    }

    synchronized H get(CudaBackend backend) {
        H handle = handles.get(backend);
        if (handle != null) return handle;
        H created = create.apply(backend);
        backend.closeWithBackend(() -> {
            synchronized (this) {
                handles.remove(backend);
            }
            destroy.accept(created);
        });
        handles.put(backend, created);
        return created;
    }
}
