package dev.isthmus.model;

import dev.isthmus.tensor.Tensor;

/** A token mixer with per-sequence conv and SSM states instead of a KV cache: Mamba-1 or Mamba-2. */
interface StateSpaceBlock {
    /** result (T, hidden) = the block applied to x (T, hidden), advancing each sequence's states. */
    void forward(Step step, int layer, Tensor x, Tensor result);
}
