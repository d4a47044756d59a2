package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaEvent;
import dev.isthmus.cuda.CudaException;
import dev.isthmus.cuda.CudaGraph;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The batched decode step of a session (one new token for every sequence), kept from step to
 * step so that it can be replayed: its scratch tensors, its KV batch (grown in place), its token
 * ids and its logits stay at the same device addresses.
 *
 * <p>The first run executes kernel by kernel and records the scratch it allocates (and creates
 * any library handles). On CUDA the second run is captured as a CUDA graph, and from then on a
 * step is: rewrite the KV lengths (and the block table when a sequence crossed into a new block)
 * and the token ids in place, then launch the graph; the logits stay on the device. A capture
 * that fails (an operation in the step that a graph cannot hold) leaves the step eager, with the
 * reason in {@link #mode()}.
 */
final class DecodeStep implements AutoCloseable {
    /** The token draw the step ends with ({@link Session#drawOnDevice}). */
    record Draw(SamplingOptions options, Tensor ids, Tensor seeds, Tensor offsets) {
        void run(Backend backend, Tensor logits) {
            if (options.isGreedy()) Elementwise.argmax(backend, ids, logits);
            else Sampling.sample(backend, ids, null, logits, options, seeds, offsets);
        }
    }

    private final DecoderModel model;
    private final Backend backend;
    private final Step step;
    private final Draw draw;      // null: the step ends with the logits
    private final Tensor ids;     // int32 [sequences] on the device
    private final Tensor hostIds; // and its host staging, kept: a step allocates no host memory
    private Tensor logits;      // f32 [sequences, vocab] on the device: the step's scratch
    private CudaGraph graph;
    private CudaEvent before, after; // around the step's launches, when the session times them
    private boolean timedLast;
    private boolean wantsGraph; // on CUDA with graphs on, until a capture fails
    private int runs;
    private String mode;

    DecodeStep(Session session) {
        this.model = session.model();
        this.backend = session.backend();
        this.step = Step.replayableDecode(session);
        this.draw = session.draw();
        boolean cuda = backend instanceof CudaBackend;
        wantsGraph = cuda && session.cudaGraph();
        mode = !cuda ? "eager (CPU backend)" : wantsGraph ? "eager (first run; the second is captured)" : "eager (CUDA graphs turned off)";
        this.hostIds = Tensor.allocateHost(DType.I32, session.maxSequences());
        try {
            this.ids = backend.allocate(DType.I32, session.maxSequences());
        } catch (RuntimeException e) {
            step.close();
            hostIds.close();
            throw e;
        }
    }

    /**
     * Runs the step for one token id per sequence (already checked) and returns the f32 logits
     * [sequences, vocab] on the device: this step's tensor, overwritten by the next run.
     */
    Tensor run(long[] tokenIds) {
        step.advanceKv();
        hostIds.copyFrom(tokenIds);
        backend.copy(ids, hostIds);
        boolean timed = startTiming();
        if (graph != null) graph.launch();
        else if (wantsGraph && runs == 1) captureOrFallBack((CudaBackend) backend);
        else forward();
        runs++;
        if (timed) after.record(((CudaBackend) backend).stream());
        timedLast = timed;
        return logits;
    }

    /** Records the start event when the session times its steps on CUDA; whether it did. */
    private boolean startTiming() {
        if (!step.session.stepTiming() || !(backend instanceof CudaBackend cuda)) return false;
        if (before == null) {
            before = new CudaEvent(cuda.ordinal());
            after = new CudaEvent(cuda.ordinal());
        }
        before.record(cuda.stream());
        return true;
    }

    /** Device microseconds from just before the last step's first launch to just after its last (waits for it); NaN when not timed. */
    double deviceMicros() {
        if (!timedLast) return Double.NaN;
        after.synchronize();
        return after.millisSince(before) * 1e3;
    }

    /** How the step runs now: "cuda graph", or "eager" with the reason. */
    String mode() {
        return mode;
    }

    private void forward() {
        step.rewind();
        logits = model.logitsOnDevice(step, ids, false);
        if (draw != null) draw.run(backend, logits);
    }

    private void captureOrFallBack(CudaBackend cuda) {
        try {
            graph = CudaGraph.capture(cuda.stream(), this::forward);
            mode = "cuda graph";
        } catch (CudaException | IllegalStateException e) {
            // Nothing ran during the capture: run the step directly, and keep doing so.
            wantsGraph = false;
            mode = "eager (the capture failed: " + e.getMessage() + ")";
            forward();
            return;
        }
        graph.launch();
    }

    @Override
    public void close() {
        try (step; ids; hostIds) {
            if (graph != null) graph.close();
            if (before != null) before.close();
            if (after != null) after.close();
        }
    }
}
