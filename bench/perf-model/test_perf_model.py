"""Unit tests of the static performance model: the SASS and PTX readers on small hand-written
listings, loop finding, classification and the model's arithmetic. No nvcc needed."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isa  # noqa: E402
import perf_model  # noqa: E402
import compare  # noqa: E402
import kernels  # noqa: E402

# The shape of `cuobjdump -sass` output: a loop from 0x0080 back-branching at 0x0140.
SASS = """
	code for sm_90
		Function : _ZN7isthmus4demoEPf
	.headerflags	@"EF_CUDA_TEXMODE_UNIFIED EF_CUDA_64BIT_ADDRESS EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                   /* 0x00000a00ff017b82 */
        /*0010*/                   S2R R0, SR_TID.X ;                       /* 0x0000000000007919 */
        /*0020*/                   ISETP.GE.AND P0, PT, R0, 0x100, PT ;    /* 0x000001000000780c */
        /*0030*/              @P0 EXIT ;                                    /* 0x000000000000094d */
        /*0080*/                   LDG.E.128 R4, desc[UR4][R2.64] ;         /* 0x0000000402047981 */
        /*0090*/                   LDS.U16 R8, [R9] ;                       /* 0x0000000009087984 */
        /*00a0*/                   FFMA R10, R4, R5, R10 ;                  /* 0x000000050a0a7223 */
        /*00b0*/                   MUFU.EX2 R11, R10 ;                      /* 0x0000000a000b7308 */
        /*00c0*/                   HMMA.16816.F32.BF16 R12, R4, R6, R12 ;   /* 0x000000060c0c723c */
        /*00d0*/                   IADD3 R2, P1, R2, 0x10, RZ ;             /* 0x0000001002027810 */
        /*00e0*/                   SHFL.BFLY PT, R13, R11, 0x1, 0x1f ;     /* 0x0c201f000b0d7f89 */
        /*00f0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;            /* 0x0000000000007b1d */
        /*0100*/                   F2FP.BF16.F32.PACK_AB R14, R11, R10 ;    /* 0x0000000a0b0e723e */
        /*0110*/                   STG.E.U16 desc[UR4][R2.64], R14 ;        /* 0x0000000e02007986 */
        /*0120*/                   ISETP.NE.AND P0, PT, R2, R15, PT ;       /* 0x0000000f0200720c */
        /*0130*/                   NOP ;                                     /* 0x0000000000007918 */
        /*0140*/              @P0 BRA 0x80 ;                                 /* 0xffffff3000000947 */
        /*0150*/                   EXIT ;                                    /* 0x000000000000794d */
        /*0160*/                   BRA 0x160;                                /* 0xfffffff000007947 */
		..........
		Function : _ZN7isthmus5otherEv
        /*0000*/                   EXIT ;                                    /* 0x000000000000794d */
"""

PTX = """
.visible .entry _Z4demoPf(
	.param .u64 _Z4demoPf_param_0
)
{
	.reg .f32 	%f<4>;
	ld.param.u64 	%rd1, [_Z4demoPf_param_0];
$L__BB0_1:
	ld.global.nc.v4.u32 	{%r1, %r2, %r3, %r4}, [%rd1];
	fma.rn.f32 	%f1, %f2, %f3, %f1;
	ex2.approx.ftz.f32 	%f2, %f1;
	{ cvt.rn.bf16.f32 %rs1, %f2;}
	div.s64 	%rd2, %rd1, %rd3;
	add.s64 	%rd1, %rd1, 16;
	setp.lt.s64 	%p1, %rd1, %rd4;
	@%p1 bra 	$L__BB0_1;
	ret;
}
"""


class SassTest(unittest.TestCase):
    def setUp(self):
        self.funcs = isa.parse_sass(SASS)

    def test_functions_and_nop(self):
        self.assertEqual([f.name for f in self.funcs], ["_ZN7isthmus4demoEPf", "_ZN7isthmus5otherEv"])
        self.assertNotIn("NOP", [i.op for i in self.funcs[0].instrs])

    def test_loop_is_the_backward_branch(self):
        f = self.funcs[0]
        (start, end), = [l for l in f.loops if f.instrs[l[0]].addr == 0x80]
        self.assertEqual(f.instrs[end].addr, 0x140)
        body = [i.cls for i in f.instrs[start:end + 1]]
        for cls in ("global", "shared", "fp32", "special", "tensor", "int", "sync", "convert", "control"):
            self.assertIn(cls, body)

    def test_widths(self):
        f = self.funcs[0]
        widths = {i.op: i.width for i in f.instrs if i.cls in ("global", "shared")}
        self.assertEqual(widths["LDG.E.128"], 16)
        self.assertEqual(widths["LDS.U16"], 2)
        self.assertEqual(widths["STG.E.U16"], 2)

    def test_hot_loop_and_counts(self):
        f = self.funcs[0]
        launch = dict(hot={"contains": r"^MUFU\.EX2", "pick": "innermost"}, hot_units=10)
        c = perf_model.count(f, launch)
        self.assertEqual(c["per_pass"]["special"], 1)
        self.assertEqual(c["total"]["special"], 10)
        self.assertEqual(c["inflight"], 32 * 16)  # one 16-byte load per lane in the loop


# Two nested loops: the outer one (over pieces) holds one mma of its own and the inner one (the
# main work) three.
NESTED_PTX = """
.visible .entry _Z6nestedPf(
	.param .u64 _Z6nestedPf_param_0
)
{
$L__BB0_1:
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
$L__BB0_2:
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6}, {%f1, %f2, %f3, %f4};
	setp.lt.s64 	%p1, %rd1, %rd4;
	@%p1 bra 	$L__BB0_2;
	setp.lt.s64 	%p2, %rd2, %rd4;
	@%p2 bra 	$L__BB0_1;
	ret;
}
"""


class HotLoopPickTest(unittest.TestCase):
    def test_fullest_is_the_inner_loop_of_the_work_and_most_the_outer(self):
        (f,) = isa.parse_ptx(NESTED_PTX)
        inner = min(f.loops, key=lambda r: r[1] - r[0])
        outer = max(f.loops, key=lambda r: r[1] - r[0])
        self.assertNotEqual(inner, outer)
        self.assertEqual(perf_model.pick_hot(f, {"contains": r"^mma", "pick": "fullest"}), inner)
        self.assertEqual(perf_model.pick_hot(f, {"contains": r"^mma", "pick": "most"}), outer)


class PtxTest(unittest.TestCase):
    def test_parse_and_expand(self):
        (f,) = isa.parse_ptx(PTX)
        self.assertEqual(f.name, "_Z4demoPf")
        self.assertEqual(len(f.loops), 1)
        ops = {i.op: i for i in f.instrs}
        self.assertEqual(ops["ld.global.nc.v4.u32"].width, 16)
        self.assertEqual(ops["ex2.approx.ftz.f32"].cls, "special")
        self.assertEqual(ops["cvt.rn.bf16.f32"].cls, "convert")  # found inside inline-asm braces
        self.assertEqual(ops["div.s64"].weight, 30)
        self.assertEqual(ops["add.s64"].weight, 2)
        self.assertEqual(ops["ld.param.u64"].weight, 0)

    def test_constant_address_offsets_fold_into_the_memory_operation(self):
        (f,) = isa.parse_ptx("""
.visible .entry _Z4foldPj(
	.param .u64 _Z4foldPj_param_0
)
{
	ld.param.u64 	%rd1, [_Z4foldPj_param_0];
	add.s64 	%rd5, %rd1, 16;
	ld.global.cs.u32 %r1, [%rd5];
	add.s64 	%rd6, %rd1, 32;
	ld.global.cs.u32 %r2, [%rd6];
	add.s64 	%rd7, %rd6, 8;
	st.global.u32 	[%rd7+4], %r1;
	add.s64 	%rd8, %rd1, 48;
	mov.u64 	%rd9, %rd8;
	ret;
}
""")
        adds = {i.text.split()[1].rstrip(","): i.weight for i in f.instrs if i.op == "add.s64"}
        # only-an-address adds are free; one whose result is also added to or moved is not
        self.assertEqual(adds, {"%rd5": 0.0, "%rd6": 2.0, "%rd7": 0.0, "%rd8": 2.0})

    def test_non_ftz_exponential_has_a_guard(self):
        cls, weight, extra = isa.ptx_expansion("ex2.approx.f32")
        self.assertEqual((cls, weight), ("special", 1.0))
        self.assertTrue(extra)

    def test_tensor_core_building_blocks(self):
        # ldmatrix is one shared-memory instruction whatever the number of matrices; the copies and
        # commit_group are async, wait_group a wait (DEPBAR), mma a tensor instruction.
        for op in ("ldmatrix.sync.aligned.m8n8.x1.shared.b16", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"):
            self.assertEqual(isa.ptx_expansion(op), ("shared", 1.0))
        self.assertEqual(isa.ptx_width("ldmatrix.sync.aligned.m8n8.x4.shared.b16"), 16)
        self.assertEqual(isa.ptx_expansion("cp.async.cg.shared.global"), ("async", 1.0))
        self.assertEqual(isa.ptx_expansion("cp.async.commit_group"), ("async", 1.0))
        self.assertEqual(isa.ptx_expansion("cp.async.wait_group"), ("sync", 1.0))
        self.assertEqual(isa.ptx_expansion("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"), ("tensor", 1.0))


# A cp.async ring's step loop: two 16-byte copies a lane per pass, then the wait.
RING_PTX = """
.visible .entry ring(
)
{
$L__BB0_1:
	cp.async.cg.shared.global [%r1], [%rd1], 16, %r2;
	cp.async.cg.shared.global [%r3], [%rd2], 16, %r2;
	cp.async.commit_group;
	cp.async.wait_group 2;
	add.s32 	%r4, %r4, 1;
	setp.lt.s32 	%p1, %r4, %r5;
	@%p1 bra 	$L__BB0_1;
	ret;
}
"""


class AsyncCopyTest(unittest.TestCase):
    def test_copies_count_in_flight_for_the_passes_ahead(self):
        (f,) = isa.parse_ptx(RING_PTX)
        self.assertEqual([i.width for i in f.instrs if i.op.startswith("cp.async.cg")], [16, 16])
        c = perf_model.count(f, dict(hot={"contains": r"^cp\.async\.cg", "pick": "innermost"}, hot_units=4))
        self.assertEqual(c["inflight"], 2 * 32 * 16)  # one pass: 2 copies of 16 bytes per lane
        m = dict(perf_model.json.load(open(os.path.join(perf_model.HERE, "machines.json")))["machines"]["H200"])
        launch = dict(threads=128, blocks=132, flops=0, flop_kind="fp32", bytes=132 * 1e6, exps=0)
        res = dict(registers=32, smem=0, spills=0)
        one = perf_model.estimate(m, launch, c, res)["t_latency"]
        two = perf_model.estimate(m, dict(launch, inflight_passes=2), c, res)["t_latency"]
        self.assertAlmostEqual(one / two, 2.0)  # twice the bytes in flight: half the latency-bound time


class ModelTest(unittest.TestCase):
    def test_occupancy(self):
        m = dict(register_alloc_unit_per_warp=256, registers_per_sm=65536, max_warps_per_sm=64,
                 shared_per_sm_bytes=233472, shared_reserved_per_block_bytes=1024, max_blocks_per_sm=32)
        self.assertEqual(perf_model.occupancy(m, 128, 84, 3136), (5, 20))  # 84 -> 88 regs a thread: 5 blocks of 4 warps
        self.assertEqual(perf_model.occupancy(m, 256, 32, 0), (8, 64))

    def test_ptxas_report(self):
        text = ("ptxas info    : Compiling entry function '_Z1kv' for 'sm_90'\n"
                "ptxas info    : Function properties for _Z1kv\n"
                "    0 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n"
                "ptxas info    : Used 40 registers, used 1 barriers, 3136 bytes smem\n")
        self.assertEqual(perf_model.parse_ptxas(text)["_Z1kv"], dict(registers=40, smem=3136, spills=12))


    def test_dynamic_shared_lowers_occupancy(self):
        m = dict(perf_model.json.load(open(os.path.join(perf_model.HERE, "machines.json")))["machines"]["H100"])
        c = dict(total={k: 10.0 for k in isa.CLASSES}, inflight=512.0)
        launch = dict(threads=128, blocks=528, flops=0, flop_kind="fp32", bytes=1e6, exps=0)
        res = dict(registers=32, smem=0, spills=0)
        full = perf_model.estimate(m, launch, c, res)
        limited = perf_model.estimate(m, dict(launch, dynamic_shared=100 * 1024), c, res)
        self.assertEqual(full["blocks_per_sm"], 16)
        self.assertEqual(limited["blocks_per_sm"], 2)  # 228 KB / (100 KB + 1 KB reserved)


class KernelsTest(unittest.TestCase):
    def test_strided_warp_trips(self):
        self.assertEqual(kernels.strided_warp_trips(8, 256), 1 / 8)  # only warp 0 has an i
        self.assertEqual(kernels.strided_warp_trips(256, 256), 1)
        self.assertEqual(kernels.strided_warp_trips(1024, 256), 4)
        self.assertEqual(kernels.strided_warp_trips(0, 256), 0)

    def test_scan_tiling(self):
        # N = 16: 4 state tiles, 32 channels a block, the 64-step chunk needs 67 KB > 48 KB: 32 steps
        self.assertEqual(kernels.scan_tiling(2048, 1, 16), (4, 32, 32))

    def test_split_count_follows_the_planner(self):
        # the values AttentionTest asserts for Attention.splitCount on 132 SMs x 2 blocks
        self.assertEqual(kernels.split_count(132, 2, 1, 8, 32, 1, 32768), 33)
        self.assertEqual(kernels.split_count(132, 2, 8, 8, 32, 1, 32768), 4)
        self.assertEqual(kernels.split_count(132, 2, 25, 4, 4, 1, 32768), 5)
        self.assertEqual(kernels.split_count(132, 2, 128, 8, 32, 1, 131072), 1)
        self.assertEqual(kernels.split_count(132, 2, 1, 8, 32, 1, 100), 1)
        self.assertLessEqual(kernels.split_count(132, 2, 1, 1, 1, 1, 1 << 20), 128)
        # the workspace rounds the chunk to 32 keys: 33 planned pieces of 32K launch as 32 of 1024
        self.assertEqual(kernels.decode_splits(1, 32768), (32, 1024))
        self.assertEqual(kernels.decode_splits(1, 131072), (33, 4000))
        self.assertEqual(kernels.decode_splits(8, 131072), (4, 32768))
        # an int8 cache's kernel holds 3 blocks an SM: 396 slots
        self.assertEqual(kernels.split_count(132, 3, 1, 8, 32, 1, 32768), 49)

    def test_tile_split_count_follows_the_gemm_planner(self):
        # native/gemm_tile_launch.h plan_split on 132 SMs x 3 blocks (396 aimed at)
        self.assertEqual(kernels.tile_split_count(2 * 64, 14336), 3)  # 1-token Mixtral down: 224 stages, 3 of 75
        self.assertEqual(kernels.tile_split_count(2 * 448, 4096), 1)  # its gate+up: tiles enough
        self.assertEqual(kernels.tile_split_count(64, 4096), 6)  # 1 x 4096 x 4096: 64 stages, 6 of 11
        self.assertEqual(kernels.tile_split_count(1, 4096), 16)  # at most 16
        self.assertEqual(kernels.tile_split_count(1, 200), 2)  # 4 stages: at least 2 a split
        self.assertEqual(kernels.tile_split_count(1, 64), 1)  # one stage: no split

    def test_split_partials_are_overhead_not_floor(self):
        unsplit = kernels.gemm_tile("Li0ELb1ELb1E", 64, 64, 4096, (0.25, 1.0), 1, 1)
        split = kernels.gemm_tile("Li0ELb1ELb1E", 64, 64, 4096, (0.25, 1.0), 6, 1)
        self.assertEqual(unsplit["overhead_bytes"], 0)
        self.assertEqual(split["overhead_bytes"], 2 * 64 * 6 * 1024 * 4)  # one live slice a tile and split, out and back
        self.assertEqual((split["blocks"], split["hot_units"]), (384, 11))

    def test_decode_warp_steps(self):
        self.assertEqual(kernels.decode_warp_steps(1024), 16)  # 64 steps over 4 warps
        self.assertEqual(kernels.decode_warp_steps(4000), 62.5)  # 250 steps: 63, 63, 62, 62
        self.assertEqual(kernels.decode_warp_steps(16), 0.25)  # one step: warp 0 alone


class CompareTest(unittest.TestCase):
    def test_split_part_is_summed(self):
        def row(kernel, est, floor, binding="launch"):
            return dict(kernel=kernel, estimate_us=str(est), floor_bytes_us=str(floor), floor_flops_us="0",
                        floor_special_us="0", floor_kind="bytes", binding=binding)
        key = ("moe [align]", "T=1", "bf16", "H100")
        before = {key: row("moe [align]", 10, 1)}
        after = {(k, "T=1", "bf16", "H100"): row(k, e, 1, b) for k, e, b in
                 (("moe [align-a]", 3, "launch"), ("moe [align-b]", 4, "issue"), ("moe [gate]", 50, "l2"))}
        ((k, b, a),) = compare.compare(before, after, "align")
        self.assertEqual((b["estimate"], a["estimate"], a["floor"], a["parts"]), (10, 7, 2, 2))
        self.assertEqual(a["binding"], "issue (align-b)")


PATH_PTX = """
.file	1 "/nonexistent/k.cuh"
.visible .entry k(
)
{
	.loc	1 10 5
	setp.eq.s32 	%p1, %r1, 0;
	@%p1 bra 	$L__ELSE;
	.loc	1 20 5, function_name $L__info_string0, inlined_at 1 11 5
	ex2.approx.f32 	%f1, %f2;
	bra.uni 	$L__JOIN;
$L__ELSE:
	.loc	1 20 5, function_name $L__info_string0, inlined_at 1 12 5
	mul.f32 	%f1, %f2, %f3;
	@%p1 bra 	$L__SKIP;
	add.f32 	%f1, %f1, %f3;
$L__SKIP:
	add.f32 	%f1, %f1, %f1;
$L__JOIN:
	.loc	1 13 5
	tanh.approx.f32 	%f4, %f1;
	ret;
}
$L__info_string0:
.b8 95,90,49,115,116,101,112,0
"""
PATH_SOURCE = {"/nonexistent/k.cuh": ["x"] * 9 + ["if (full)", "    step<true>(a);", "    step<false>(a);",
                                                   "y = tanhf(y);"] + ["x"] * 6 + ["    return v;"]}


class PathWeightTest(unittest.TestCase):
    def setUp(self):
        (self.f,) = isa.parse_ptx(PATH_PTX)
        perf_model._SOURCE_CACHE.update({k: v for k, v in PATH_SOURCE.items()})

    def test_loc_and_inlined_name(self):
        ex2 = next(i for i in self.f.instrs if i.op.startswith("ex2"))
        self.assertEqual(ex2.loc, (1, 20, "_Z1step", 1, 11))

    def test_no_rules_is_every_branch(self):
        w, hits = perf_model.path_weights(self.f, [])
        self.assertEqual(set(w), {1.0})
        launch = dict(hot=None)
        self.assertEqual(perf_model.count(self.f, launch, w)["total"], perf_model.count(self.f, launch)["total"])

    def test_call_site_rule_weights_the_path_up_to_the_join(self):
        w, hits = perf_model.path_weights(self.f, [dict(name="false path", weight=0.0, source=r"step<false>")])
        ops = {i.text.split()[0] + str(n): x for n, (i, x) in enumerate(zip(self.f.instrs, w))}
        by_op = [(i.op, x) for i, x in zip(self.f.instrs, w)]
        self.assertEqual(hits, [(3, 3)])  # the .loc holds for the add and the skip target too
        self.assertEqual([x for op, x in by_op if op.startswith(("mul", "add"))], [0.0, 0.0, 0.0])
        self.assertEqual([x for op, x in by_op if op.startswith(("ex2", "tanh", "setp"))], [1.0, 1.0, 1.0])
        self.assertTrue(ops)

    def test_instr_and_function_rules_multiply(self):
        rules = [dict(name="tanh", weight=0.5, instr=r"tanh\.approx"), dict(name="step", weight=0.5, function=r"step", source=r"step<true>")]
        w, hits = perf_model.path_weights(self.f, rules)
        tanh = next(x for i, x in zip(self.f.instrs, w) if i.op.startswith("tanh"))
        ex2 = next(x for i, x in zip(self.f.instrs, w) if i.op.startswith("ex2"))
        self.assertEqual((tanh, ex2), (0.5, 0.5))
        total = perf_model.count(self.f, dict(hot=None), w)["total"]
        self.assertLess(sum(total.values()), sum(perf_model.count(self.f, dict(hot=None))["total"].values()))

    def test_unmatched_rule_is_reported(self):
        w, hits = perf_model.path_weights(self.f, [dict(name="none", weight=0.0, source=r"nowhere")])
        self.assertEqual(hits, [(0, 0)])
        self.assertEqual(set(w), {1.0})

    def test_rescale_fraction(self):
        self.assertEqual(kernels.rescale_fraction(4), 1.0)
        self.assertAlmostEqual(kernels.rescale_fraction(8), (4 + 4 / 5 + 4 / 6 + 4 / 7 + 4 / 8) / 8)
        self.assertLess(kernels.rescale_fraction(512), 0.05)

    def test_bench_rows_carry_weights(self):
        rows = {(l["bench"], l["part"]): l for l in kernels.all_launches()}
        for key in (("selective-scan", ""), ("causal-conv1d", ""), ("attention-decode", ""), ("rmsnorm", "")):
            self.assertTrue(rows[key]["paths"], key)
            for rule in rows[key]["paths"]:
                self.assertTrue(0.0 <= rule["weight"] <= 1.0 and rule.get("why"))


if __name__ == "__main__":
    unittest.main()
