package dev.isthmus.cli;

import java.util.List;

/** The ops `isthmus op` knows. A kernel's op is added by one line here (see the README). */
final class Ops {
    private Ops() {}

    static final List<Op> ALL = List.of(new RmsNormOp(), new GemmOp(), new SelectiveScanOp(), new SelectiveStateUpdateOp(),
            new CausalConv1dOp(), new CausalConv1dUpdateOp(), new AttentionPrefillOp(), new AttentionDecodeOp(), new AttentionMergeOp(),
            new RopeAppendOp(), new MoeRouteOp(), new MoeLayerOp());

    /** The op called {@code name}; an IllegalArgumentException listing the known ones if there is none. */
    static Op find(String name) {
        for (Op op : ALL) if (op.name().equals(name)) return op;
        throw new IllegalArgumentException("unknown op '" + name + "' (ops: " + String.join(", ", ALL.stream().map(Op::name).toList()) + ")");
    }
}
