"""GGUF fixtures for the reader and dequantization tests, written by the `gguf` package (llama.cpp's
own Python writer and quantizers), so that the Java side is checked against an implementation it
did not write.

    python3 make_gguf_fixtures.py [OUTDIR]     # OUTDIR defaults to this script's folder

types.gguf holds, for every tensor type Isthmus reads, a tensor of an awkward shape and beside it
`<name>.dequantized`: gguf's own dequantization of it in F32; for the types gguf quantizes,
`<name>.source` holds the F32 values it quantized. Q8_0, Q4_0, Q4_1, F16 and BF16 are
quantized from random normals by gguf's quantizers; gguf has no quantizer for the K-quants, so
their blocks are random bytes with finite f16 scales, which gguf's dequantizer then defines. The
metadata holds one value of every metadata type, arrays of numbers and strings, and a nested
array. Needs gguf and numpy (versions in versions.json).
"""

import json
import os
import sys
from importlib.metadata import version

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

SEED = 20261202


def finite_f16(rng, count, low, high):
    return rng.uniform(low, high, size=count).astype(np.float16).view(np.uint8).reshape(count, 2)


def k_quant_blocks(rng, qtype, blocks):
    """Random blocks of a K-quant type whose f16 scales are finite (the rest of the bytes is any)."""
    block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
    raw = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):  # d, dmin first
        raw[:, 0:2] = finite_f16(rng, blocks, 0.001, 0.05)
        raw[:, 2:4] = finite_f16(rng, blocks, 0.001, 0.05)
    elif qtype == T.Q6_K:  # d last
        raw[:, 208:210] = finite_f16(rng, blocks, 0.001, 0.05)
    return raw


def tensors(rng):
    """(name, type, rows, cols) with cols a whole number of blocks; rows and block counts awkward."""
    out = []
    for qtype, rows, cols in [(T.F32, 3, 5), (T.F16, 5, 7), (T.BF16, 2, 9), (T.Q8_0, 3, 96), (T.Q4_0, 5, 64),
                              (T.Q4_1, 3, 160), (T.Q4_K, 3, 512), (T.Q5_K, 2, 768), (T.Q6_K, 3, 256)]:
        name = "t_" + qtype.name.lower()
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        if qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
            data = k_quant_blocks(rng, qtype, rows * cols // block).reshape(rows, cols // block * block_bytes)
        else:
            values = rng.standard_normal((rows, cols)).astype(np.float32)
            data = values if qtype == T.F32 else gguf.quants.quantize(values, qtype)
        out.append((name, qtype, data, None if qtype in (T.Q4_K, T.Q5_K, T.Q6_K) else values))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(SEED)
    path = os.path.join(outdir, "types.gguf")
    writer = gguf.GGUFWriter(path, arch="fixture")
    writer.add_uint8("fixture.u8", 200)
    writer.add_int8("fixture.i8", -100)
    writer.add_uint16("fixture.u16", 60000)
    writer.add_int16("fixture.i16", -30000)
    writer.add_uint32("fixture.u32", 4000000000)
    writer.add_int32("fixture.i32", -2000000000)
    writer.add_float32("fixture.f32", 0.1)
    writer.add_bool("fixture.bool", True)
    writer.add_string("fixture.string", "grüße, ggml")
    writer.add_uint64("fixture.u64", 1 << 40)
    writer.add_int64("fixture.i64", -(1 << 40))
    writer.add_float64("fixture.f64", 0.1)
    writer.add_array("fixture.ints", [1, -2, 3])
    writer.add_array("fixture.strings", ["a", "", "ü"])
    writer.add_array("fixture.nested", [[1, 2], [3]])
    for name, qtype, data, source in tensors(rng):
        writer.add_tensor(name, data, raw_dtype=qtype)
        writer.add_tensor(name + ".dequantized", gguf.quants.dequantize(data, qtype).astype(np.float32))
        if source is not None and qtype not in (T.F32, T.F16, T.BF16):
            writer.add_tensor(name + ".source", source)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with open(os.path.join(outdir, "versions.json"), "w") as f:
        json.dump({"gguf": version("gguf"), "numpy": version("numpy"), "seed": SEED}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
