package dev.isthmus.cli;

/** `isthmus op attention-prefill`: attention of the new tokens (a prompt, a chunk of one, speculative tokens) over the paged cache. */
final class AttentionPrefillOp extends AttendOp {
    @Override
    public String name() {
        return "attention-prefill";
    }

    @Override
    boolean decode() {
        return false;
    }
}
