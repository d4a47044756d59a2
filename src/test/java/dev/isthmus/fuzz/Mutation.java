package dev.isthmus.fuzz;

/**
 * What a bad call changes in the one argument it corrupts. Every one of these must be refused
 * with an IllegalArgumentException, except where the argument may legally take it (a null
 * optional tensor, a strided view that happens to be contiguous, a host tensor where a copy
 * takes one); {@link Args} knows which.
 */
enum Mutation {
    /** null in place of the argument. */
    NULL,
    /** A tensor (or batch, workspace) closed before the call. */
    CLOSED,
    /** The right shape in i8, which no operation takes. */
    I8,
    /** One dimension more than expected. */
    EXTRA_DIM,
    /** A non-contiguous view of the right shape. */
    STRIDED,
    /** A host tensor given to the CUDA backend. */
    HOST,
    /** A shape whose byte size overflows a long, over a small storage. */
    HUGE,
    /** The scalar or count of the slot out of range (NaN, negative, past a limit). */
    BAD_VALUE
}
