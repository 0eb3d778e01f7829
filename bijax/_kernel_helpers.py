"""Pallas device functions shared by bijax kernels.

Each has a twin of the same name in bitorch/_triton_helpers.py; the pair is what
lets the two frameworks agree to the bit on the GPU. fp64 inside a kernel needs
x64 on while the kernel is traced; it is switched on for those lines alone.
"""
import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from bijax import _launch
from bispec import common


def tree_sum(x: jax.Array, vec: int, warps: int, explicit: bool = False) -> jax.Array:
    """Sum of a 1-D block (a power of 2 long) in its dtype by bispec.common.SUM_RULE's tree.

    vec and warps are the block's layout: its elements a 16-byte load and the kernel's num_warps.
    explicit takes every step as pairs, for a block whose layout the kernel does not fix.
    """
    n = x.shape[0]
    levels = common.tree_levels(n, vec, warps)
    # On the GPU the steps inside a thread are written out and Triton's butterfly, the rule's order
    # (test_sum_tree), does the rest, one term a thread.
    hybrid = not (_launch.INTERPRET or explicit) and n >= vec * 32 * warps
    for i in range(levels[0] + levels[1] if hybrid else sum(levels)):
        pairs = x.reshape(common.pair_shape(n, levels, i))
        if _launch.INTERPRET:  # XLA would merge a chain of sums into one reduction of its own order
            x = (pairs[:, 0] + pairs[:, 1]).reshape(n >> (i + 1))
        else:  # a sum over an axis of 2: one add
            x = jnp.sum(pairs, axis=1).reshape(n >> (i + 1))
    return jnp.sum(x) if hybrid else x.reshape(())


# XLA launches a kernel that takes any dynamic shared memory with CU_FUNC_CACHE_PREFER_SHARED, which leaves it ~23
# KB of L1 where Triton's launcher leaves bitorch's twins ~240 KB (bispec.layer_norm says more). Triton's own
# reduction takes shared memory for its warps' step; tree_total takes that step through a static .shared array of
# its own in inline PTX instead, so that a kernel whose sums all go through it takes none. Same bits. H100, same
# process, medians of 4 (bench/results/h100_2026-12-07d/static_ab.log), on -> off: layer_norm 4096 tokens 47.18 ->
# 48.48 us, rmsnorm 1024 24.35 -> 24.61; the mean's row kernel, which tried it too, 3.136 -> 3.008 at 256 tokens,
# 22.38 -> 22.34 at 4096, so it keeps Triton's reduction.
STATIC_WARP_SUMS = True


def total_without_shared(n: int, vec: int, warps: int) -> bool:
    """Whether tree_total serves a block of n terms here: on the GPU, with STATIC_WARP_SUMS, one term a thread or more."""
    return STATIC_WARP_SUMS and not _launch.INTERPRET and common.tree_ptx_fits(n, vec, warps)


def tree_total(x: jax.Array, vec: int, warps: int) -> jax.Array:
    """tree_sum of the fp32 block x (total_without_shared must hold) as a block of x's shape every element of which
    is the total, every step in inline PTX. The PTX takes a thread's elements in Triton's register order for pack, its
    vector's elements, then its repeats, as the layout of a 16-byte load of vec elements gives them. Triton lays the
    block out for its loads and stores: one that stores the block wider than x (fp32 for bf16 x) re-lays it 4 a
    thread and breaks that order (test_total_bits checks the bits on the GPU)."""
    per_thread = x.shape[0] // (32 * warps)
    [total] = plgpu.elementwise_inline_asm(
        common.tree_ptx(per_thread, vec, warps), args=[x], pack=per_thread,
        constraints=common.tree_ptx_constraints(per_thread),
        result_shape_dtypes=[jax.ShapeDtypeStruct(x.shape, jnp.float32)])
    return total


def row_sum(x: jax.Array, vec: int, warps: int, whole_row: bool) -> jax.Array:
    """tree_sum of a row's fp32 block x; for a kernel that holds its row whole and uses the sum only elementwise with
    blocks of x's shape (whole_row), tree_total's block where it serves."""
    if whole_row and total_without_shared(x.shape[0], vec, warps):
        return tree_total(x, vec, warps)
    return tree_sum(x, vec, warps)


# How bijax reads a stream past L1 (no bit depends on it): "cg", PTX ld.global.cg as bitorch's twins load, or
# "volatile", a system-scope strong load, which bijax used before (the older bijax timings in bispec's comments).
# bench.tune past_l1 on the H100 (bench/results/h100_2026-12-06e/cg_579229f): within 0.07 us of each other at 8,
# 256, 2048 and 4096 tokens (rmsnorm, layer_norm, mean) but layer_norm at 4096, 48.22 us with cg against 48.35.
PAST_L1_LOAD = "cg"


def _lower_cg() -> None:
    """Make Pallas' Triton lowering take cache_modifier=".cg": it accepts the name, then looks it up in a table
    keyed "cg" and fails (jax 0.10, 0.11). An alias in that table is the whole fix; test_kernel_code checks that
    the modifier reaches the IR."""
    from jax._src.pallas.triton import lowering

    table = lowering._STR_TO_CACHE_MODIFIER
    table.setdefault(".cg", table["cg"])


_lower_cg()


def past_l1_load() -> dict:
    """plgpu.load's arguments for a load that skips L1 (neither takes an eviction hint)."""
    return dict(cache_modifier=".cg") if PAST_L1_LOAD == "cg" else dict(volatile=True)


def stream_load(past_l1: bool, eviction: str) -> dict:
    """plgpu.load's arguments for an input read once: past L1, or through L1 with `eviction` (bitorch's twin:
    _launch.x_load_hints)."""
    return past_l1_load() if past_l1 else dict(eviction_policy=eviction or None)


def mul_f32(a: jax.Array, b: jax.Array) -> jax.Array:
    """a*b of fp32 values as PTX mul.rn.f32 (the Triton twin's), which no compiler contracts with a following add.

    Under Pallas' interpreter it is a plain product, which XLA's CPU compiler may still fuse with the add
    after it (bits on the CPU are within tolerance there, not the rule's).
    """
    if _launch.INTERPRET:
        return a * b
    return _inline_f32("mul.rn.f32 $0, $1, $2;", "=f,f,f", a, b)


def out_columns(cols: jax.Array, mask: jax.Array, n: int, block: int, slice_: int,
                in_block: bool = False) -> tuple[jax.Array, jax.Array]:
    """(columns, mask) a program writes: the whole block, or slice program_id(1) of a split row, as a block of its
    own or (in_block) as the row's block masked to the slice."""
    if slice_ == block:
        return cols, mask
    if in_block:
        return cols, mask & (cols // slice_ == pl.program_id(1))
    ocols = pl.program_id(1) * slice_ + jnp.arange(slice_)
    return ocols, ocols < n


def log_f32(x: jax.Array) -> jax.Array:
    """log; Pallas lowers it to libdevice's __nv_logf, as the Triton twin calls it."""
    return jnp.log(x)


def _inline_f32(asm: str, constraints: str, *args) -> jax.Array:
    """One PTX instruction over fp32 operands, broadcast together, written inline (the Triton twin's own).

    The Triton lowering takes no literal or scalar operand there and cannot broadcast an asm scalar: scalars
    go in, and come back, as one-lane blocks, which broadcast like scalars.
    """
    args = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float32) for v in args))
    args = [v.reshape((1,)) if v.ndim == 0 else v for v in args]
    [out] = plgpu.elementwise_inline_asm(asm, args=args, constraints=constraints, pack=1,
                                         result_shape_dtypes=[jax.ShapeDtypeStruct(args[0].shape, jnp.float32)])
    return out


def fma_f32(a, b, c) -> jax.Array:
    """a*b + c of fp32 values, rounded once: PTX fma.rn.f32, the instruction tl.fma emits in the Triton twin.

    JAX has no FMA primitive, so on the GPU the instruction is written inline;
    a compiler can neither fuse nor split it. Scalars broadcast against blocks.
    Under Pallas' interpreter the product is taken exactly in fp64 and the sum
    rounded to fp64, then to fp32, as the Triton twin does under its interpreter.
    The backend is read when the kernel is traced (bijax._launch.INTERPRET).
    """
    if _launch.INTERPRET:
        a, b, c = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float32) for v in (a, b, c)))
        with jax.enable_x64(True):
            f64 = jnp.float64
            return (a.astype(f64) * b.astype(f64) + c.astype(f64)).astype(jnp.float32)
    return _inline_f32("fma.rn.f32 $0, $1, $2, $3;", "=f,f,f,f", a, b, c)


def exp_f32(x: jax.Array) -> jax.Array:
    """exp of fp32 x by bispec.common.EXP_RULE, the same instructions as the Triton twin."""
    t = mul_f32(x, common.LOG2E)
    if _launch.INTERPRET:  # XLA's exp2 on the CPU: within EXP_RULE's bound, not the SFU's bits
        y = jnp.exp2(t)
        return jnp.where(y < common.FLT_MIN, jnp.float32(0.0), y)
    return _inline_f32("ex2.approx.ftz.f32 $0, $1;", "=f,f", t)


def reciprocal_f32(s: jax.Array) -> jax.Array:
    """1/s of fp32 s, correctly rounded: PTX rcp.rn.f32, the instruction the Triton twin writes.

    Under Pallas' interpreter, XLA's fp32 division (IEEE, correctly rounded).
    """
    if _launch.INTERPRET:
        return jnp.float32(1.0) / s
    return _inline_f32("rcp.rn.f32 $0, $1;", "=f,f", s)


def max_exp(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(m, e) of a 1-D fp32 block: m = max(x), e = exp(x - m).

    A block of -inf only (fully masked, or padding) gives (-inf, 0), never NaN.
    """
    m = jnp.max(x, axis=0)
    return m, exp_f32(x - jnp.where(m == -jnp.inf, 0.0, m))


def exp_shift(a: jax.Array, m: jax.Array) -> jax.Array:
    """exp(a - m) for a <= m, exactly 1 where a == m (also for -inf == -inf)."""
    return exp_f32(jnp.where(a == m, 0.0, a - m))


def combine_chunks(m_c: jax.Array, s_c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(M, S) of a row from its chunks' (max, sum of exp(x - max)) blocks, as bispec.softmax specifies.

    Padding lanes hold (-inf, 0). The sum is the tree of vec = warps = 1 (halving, top bit first).
    """
    m = jnp.max(m_c, axis=0)
    return m, tree_sum(mul_f32(s_c, exp_shift(m_c, m)), 1, 1, explicit=True)
