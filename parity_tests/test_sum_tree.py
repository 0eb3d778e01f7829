"""tree_sum, every kernel's row sum (bispec.common.SUM_RULE): the Triton and the Pallas twin give the bits of the
spec's NumPy tree, for the layouts the ops use. On the GPU that checks the compilers' own butterfly over lanes and
warps, which the kernels leave the last steps to, against the rule's order."""
import numpy as np
import pytest

from bispec import common, layer_norm, reduce, rms_norm, softmax
from parity_tests import harness
from parity_tests.harness import JAX, TORCH

ROWS = 16

_tlaunch = pytest.importorskip("bitorch._launch")  # before triton: it settles TRITON_INTERPRET
import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from bitorch._triton_helpers import mul_f32, tree_sum  # noqa: E402


@triton.jit
def _sum_kernel(x_ptr, out_ptr, N: tl.constexpr, BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr,
                SQUARES: tl.constexpr):
    cols = tl.arange(0, BLOCK)
    v = tl.load(x_ptr + tl.program_id(0).to(tl.int64) * N + cols, mask=cols < N, other=0.0).to(tl.float32)
    if SQUARES:
        v = mul_f32(v, v)
    tl.store(out_ptr + tl.program_id(0), tree_sum(v, VEC, WARPS))


def _triton_sums(x: np.ndarray, warps: int, squares: bool) -> np.ndarray:
    rows, n = x.shape
    xt = TORCH.asarray(x)
    out = torch.empty(rows, dtype=torch.float32, device=xt.device)
    _tlaunch.launch(_sum_kernel, (rows,), xt, out, N=n, BLOCK=common.next_pow2(n),
                    VEC=common.vector_width(n, x.dtype.itemsize), WARPS=warps, SQUARES=squares)
    return TORCH.numpy(out)


def _pallas_sums(x: np.ndarray, warps: int, squares: bool) -> np.ndarray:
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plgpu

    from bijax import _launch
    from bijax._kernel_helpers import mul_f32 as pallas_mul_f32
    from bijax._kernel_helpers import tree_sum as pallas_tree_sum

    rows, n = x.shape
    block, vec = common.next_pow2(n), common.vector_width(n, x.dtype.itemsize)

    def kernel(x_ref, out_ref):
        cols = jnp.arange(block)
        v = plgpu.load(x_ref.at[cols], mask=cols < n, other=0).astype(jnp.float32)
        out_ref[...] = pallas_tree_sum(pallas_mul_f32(v, v) if squares else v, vec, warps)

    call = _launch.pallas_call(kernel, name="test_sum_tree", grid=(rows,), in_specs=[_launch.row_spec(n)],
                               out_specs=pl.BlockSpec((None,), lambda i: (i,)),
                               out_shape=jax.ShapeDtypeStruct((rows,), jnp.float32), num_warps=warps)
    return JAX.numpy(jax.jit(call)(JAX.asarray(x)))


SUMS = {"torch": _triton_sums, "jax": _pallas_sums}

# (row length, warps) as the ops lay their sums out.
LAYOUTS = sorted({(n, op.num_warps(n)) for op in (rms_norm, layer_norm) for n in (8192, 5120, 1000, 3)}
                 | {(n, reduce.row_warps(n)) for n in (8192, 1000)}
                 | {(32000, softmax.num_warps(32000)), (softmax.CHUNK, softmax.CHUNK_WARPS)})


@pytest.mark.parametrize("squares", [False, True], ids=["terms", "squares"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("n,warps", LAYOUTS)
def test_rule_bits(backend, rng, n, warps, dtype, squares):
    if backend is JAX and squares and dtype == "float32" and not harness.ON_GPU:
        pytest.skip("XLA's CPU compiler fuses the Pallas interpreter's fp32 products with the adds after them")
    x = harness.random_array(rng, (ROWS, n), dtype)
    x[:, ::7] *= 1e4  # terms of very different sizes: any other order rounds differently
    terms = np.zeros((ROWS, common.next_pow2(n)), np.float32)
    terms[:, :n] = x.astype(np.float32)
    if squares:
        terms = terms * terms
    expected = common.tree_sum(terms, common.vector_width(n, x.dtype.itemsize), warps)
    harness.assert_bitwise_equal(SUMS[backend.name](x, warps, squares), expected,
                                 f"{backend.name} tree_sum over {n} {dtype} terms, {warps} warps")


def test_levels_cover_the_block():
    for n in (1, 2, 8, 256, 1024, 8192, 32768):
        for vec in (1, 2, 4, 8):
            for warps in (1, 4, 8, 16, 32):
                levels = common.tree_levels(n, vec, warps)
                assert sum(levels) == n.bit_length() - 1 and min(levels) >= 0, (n, vec, warps, levels)


def _pallas_totals(x: np.ndarray, warps: int) -> np.ndarray:
    """bijax's tree_total of each row (a block of totals) on the GPU: (rows, elements of the block), fp32.

    The kernel stores the totals in words of x's width (a 2-byte x's as the halves of their bits), as a norm stores
    its output: a 4-byte store would lay the block out 4 a thread and hand tree_total a layout its PTX does not take."""
    import jax
    import jax.numpy as jnp
    from jax.experimental.pallas import triton as plgpu

    from bijax import _launch, _kernel_helpers

    rows, n = x.shape
    block, vec = common.next_pow2(n), common.vector_width(n, x.dtype.itemsize)
    halves = x.dtype.itemsize == 2

    def kernel(x_ref, *out_refs):
        cols = jnp.arange(block)
        v = plgpu.load(x_ref.at[cols], mask=cols < n, other=0).astype(jnp.float32)
        total = _kernel_helpers.tree_total(v, vec, warps)
        if halves:
            bits = jax.lax.bitcast_convert_type(total, jnp.uint32)
            out_refs[0][...] = (bits >> 16).astype(jnp.uint16)
            out_refs[1][...] = (bits & 0xFFFF).astype(jnp.uint16)
        else:
            out_refs[0][...] = total

    word = jnp.uint16 if halves else jnp.float32
    call = _launch.pallas_call(kernel, name="test_tree_total", grid=(rows,), in_specs=[_launch.row_spec(n)],
                               out_specs=[_launch.row_spec(block)] * (1 + halves),
                               out_shape=[jax.ShapeDtypeStruct((rows, block), word)] * (1 + halves), num_warps=warps)
    out = [np.asarray(o) for o in jax.jit(call)(JAX.asarray(x))]
    if not halves:
        return out[0]
    return ((out[0].astype(np.uint32) << 16) | out[1]).view(np.float32)


@pytest.mark.skipif(not harness.ON_GPU, reason="inline PTX: GPU only")
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("n,warps", LAYOUTS)
def test_total_bits(rng, n, warps, dtype):
    """bijax's tree_total: every element of its block is the rule's sum (Triton's register order for pack included)."""
    from bijax import _kernel_helpers

    x = harness.random_array(rng, (ROWS, n), dtype)
    vec = common.vector_width(n, x.dtype.itemsize)
    if not _kernel_helpers.total_without_shared(common.next_pow2(n), vec, warps):
        pytest.skip("tree_sum's own path")
    x[:, ::7] *= 1e4
    terms = np.zeros((ROWS, common.next_pow2(n)), np.float32)
    terms[:, :n] = x.astype(np.float32)
    totals = _pallas_totals(x, warps)
    expected = np.broadcast_to(common.tree_sum(terms, vec, warps)[:, None], totals.shape)
    harness.assert_bitwise_equal(totals, expected, f"bijax tree_total over {n} {dtype} terms, {warps} warps")


@pytest.mark.parametrize("per_thread,vec,warps", [(16, 8, 16), (8, 8, 4), (4, 4, 8), (1, 8, 16), (2, 1, 2)])
def test_total_ptx_follows_the_rule(rng, per_thread, vec, warps):
    """tree_total's PTX, run here by a small interpreter over every thread of ROWS programs, gives the rule's bits
    when thread t's operand i holds element (i // vec) * vec * threads + t * vec + i % vec (a 16-byte load's layout)."""
    from bispec.common import tree_ptx

    threads, vec = 32 * warps, min(vec, per_thread)
    x = (rng.standard_normal((ROWS, per_thread * threads))
         * 10.0 ** rng.integers(-4, 5, (ROWS, per_thread * threads))).astype(np.float32)  # any other order rounds apart
    t = np.arange(threads)
    regs = {f"${per_thread + i}": x[:, (i // vec) * vec * threads + t * vec + i % vec] for i in range(per_thread)}
    shared, outputs = {}, {}
    for line in tree_ptx(per_thread, vec, warps).splitlines():
        op, _, args = line.rstrip(";").partition(" ")
        args = [a.strip() for a in args.split(",")]
        if op == "add.f32":
            regs[args[0]] = regs[args[1]] + regs[args[2]]
        elif op == "shfl.sync.bfly.b32":
            regs[args[0]] = regs[args[1]][:, t ^ int(args[2])]
        elif op == "@%tp":  # st.shared.f32 [%tad], value: lane 0 of each warp, at its warp's slot
            shared.update({4 * w: regs[args[1]][:, 32 * w] for w in range(warps)})
        elif op == "ld.shared.f32":
            regs[args[0]] = np.repeat(shared[int(args[1].strip("[]").split("+")[1])][:, None], threads, axis=1)
        elif op == "mov.f32":
            outputs[args[0]] = regs[args[1]]
    assert sorted(outputs) == sorted(f"${i}" for i in range(per_thread))
    expected = np.repeat(common.tree_sum(x, vec, warps)[:, None], threads, axis=1)
    for out in outputs.values():
        harness.assert_bitwise_equal(out, expected, f"tree_total's PTX, {per_thread} terms a thread, {warps} warps")
