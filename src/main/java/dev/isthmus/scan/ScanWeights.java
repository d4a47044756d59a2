package dev.isthmus.scan;

import dev.isthmus.tensor.Tensor;

/**
 * The per-layer parameters of a selective scan, kept in fp32 as Mamba keeps them (the recurrence
 * is sensitive to their precision) while the activations may be bf16 or fp16.
 *
 * @param a             (D, N) f32: the state matrix, one diagonal per channel (Mamba's -exp(A_log))
 * @param d             (D) f32 skip weight, or null for none
 * @param deltaBias     (D) f32 added to delta before the softplus, or null for none
 * @param deltaSoftplus whether dt = softplus(delta + deltaBias) (Mamba: yes) or delta + deltaBias
 */
public record ScanWeights(Tensor a, Tensor d, Tensor deltaBias, boolean deltaSoftplus) {}
