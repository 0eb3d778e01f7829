"""bitorch layer_norm (weight and bias, hidden 8192 bf16) against bit-neutral variants of its kernel, XLA and bijax beside;
medians of 5 rounds of each line's mean time (bench.tune's helpers), bits checked against the shipped kernel.
  int32  the row offset in 32 bits (as bijax's BlockSpec computes it)
  block  a split row keeps its whole-row block: d and y over the block, weight, bias and the store masked to the
         program's slice (no second load of the slice)
  ptx    both sums through bispec.common.tree_ptx (bitorch's row_sum; one static shared array, no Triton reduction)
    python ab_ln.py [tokens ...]"""
import sys

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import layer_norm as spec
from bitorch._triton_helpers import cast_rtne, fma_f32, mul_f32, out_columns, row_sum

@triton.jit
def ln_variant(x_ptr, w_ptr, b_ptr, out_ptr, eps_sum, HIDDEN: tl.constexpr, INV_HIDDEN: tl.constexpr,
               BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr, SLICE: tl.constexpr,
               INT32: tl.constexpr, IN_BLOCK: tl.constexpr, PTX: tl.constexpr):
    row = tl.program_id(0) if INT32 else tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < HIDDEN
    if IN_BLOCK:
        lo = tl.program_id(1) * SLICE
        ocols, omask = cols, mask & (cols >= lo) & (cols < lo + SLICE)
    else:
        ocols, omask = out_columns(cols, mask, HIDDEN, BLOCK, SLICE)
    w = tl.load(w_ptr + ocols, mask=omask, other=0.0, eviction_policy="evict_last").to(tl.float32)
    b = tl.load(b_ptr + ocols, mask=omask, other=0.0, eviction_policy="evict_last").to(tl.float32)
    x = tl.load(x_ptr + row * HIDDEN + cols, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
    if SLICE < BLOCK and not IN_BLOCK:
        xs = tl.load(x_ptr + row * HIDDEN + ocols, mask=omask, other=0.0, eviction_policy="evict_first").to(tl.float32)
    s = row_sum(x, VEC, WARPS, PTX)
    neg_inv = tl.full([], -INV_HIDDEN, tl.float32)
    d = tl.where(mask, fma_f32(s, neg_inv, x), 0.0)
    rstd = tl.math.rsqrt((row_sum(mul_f32(d, d), VEC, WARPS, PTX) + eps_sum) * INV_HIDDEN)
    if SLICE < BLOCK and not IN_BLOCK:
        d = fma_f32(s, neg_inv, xs)
    y = fma_f32(d * rstd, w, b)
    tl.store(out_ptr + row * HIDDEN + ocols, cast_rtne(y, out_ptr.dtype.element_ty), mask=omask,
             eviction_policy="evict_first")


def variant(int32=False, in_block=False, ptx=False):
    def run(x, w, b):
        out = torch.empty_like(x)
        rows, hidden = x.shape
        split = spec.triton_split(rows, hidden, False)
        ln_variant[(rows, split)](x, w, b, out, spec.DEFAULT_EPS * hidden, HIDDEN=hidden,
                                  INV_HIDDEN=common.inv_f32(hidden), BLOCK=spec.block_size(hidden),
                                  VEC=common.vector_width(hidden, 2), WARPS=spec.num_warps(hidden),
                                  SLICE=spec.block_size(hidden) // split, INT32=int32, IN_BLOCK=in_block, PTX=ptx,
                                  num_warps=spec.num_warps(hidden))
        return out
    return run


def main():
    import jax

    import bijax
    import bitorch
    from bench import layer_norm as bench_layer_norm
    from bench.tune import _jax_ms, _norm_sets, _rounds, _torch_ms

    assert (spec.STREAM_EVICTION, spec.PARAM_EVICTION) == ("evict_first", "evict_last"), "the variants' hints"
    for m in [int(t) for t in sys.argv[1:]] or [1, 8, 32, 128]:
        # tree_total's block of totals has the whole row's layout, not a slice's: "ptx" alone serves whole rows
        split = spec.triton_split(m, 8192, False)
        VARIANTS = {"int32": variant(int32=True), **({"ptx": variant(ptx=True)} if split == 1 else {}),
                    **({"block": variant(in_block=True), "block+ptx": variant(in_block=True, ptx=True),
                        "block+ptx+int32": variant(True, True, True)} if split > 1 else {}),
                    "plain": variant()}
        sets, jsets = _norm_sets(m, 8192, 2)
        shipped = lambda x, r, w, b: bitorch.layer_norm(x, w, b)  # noqa: E731
        want = shipped(*sets[0])
        lines = {"xla": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)), jsets),
                 "bijax": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)), jsets),
                 "bitorch": lambda: _torch_ms(shipped, sets)}
        for name, fn in VARIANTS.items():
            same = torch.equal(fn(sets[0][0], *sets[0][2:]), want)
            print(f"ab_ln tokens={m}: {name} bits equal to bitorch: {same}", flush=True)
            lines[name] = lambda fn=fn: _torch_ms(lambda x, r, w, b: fn(x, w, b), sets)
        _rounds("ab_ln", m, lines, {}, {}, rounds=5)


if __name__ == "__main__":
    main()
