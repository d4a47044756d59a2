package dev.isthmus.cli;

/** `isthmus op attention-decode`: one new token per sequence against its cached context, the KV length split over blocks. */
final class AttentionDecodeOp extends AttendOp {
    @Override
    public String name() {
        return "attention-decode";
    }

    @Override
    boolean decode() {
        return true;
    }
}
