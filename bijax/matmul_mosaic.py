"""bijax's Hopper matmul: a Pallas Mosaic GPU kernel with bitorch's reduction order.

Pallas' Triton lowering has no TMA loads, so on Hopper bijax trailed bitorch's
TMA kernels by up to 1.3x (README). Where bispec.matmul.plan(..., mosaic=True)
gives a Mosaic tile (MOSAIC_SWAPS: bf16/fp16, the tile dividing N and K, M a
multiple of 8: TMA loads zeros past M and drops the stores there) this kernel
runs instead: a program per SM walks the output tiles, matrix after matrix of a
batch, each matrix's in the grouped order (bispec.matmul.tile_of); a memory warpgroup
streams each tile's K tiles of BLOCK_K by TMA into a ring of `stages`
shared-memory slots, and one to three compute warpgroups (each its own columns
of the tile) issue one wgmma per K tile, ascending, into one fp32 accumulator.
That is the contract's order and the wgmma instructions bitorch's Triton
issues, and the bias added once in fp32 after them, so the bits are bitorch's
(test_jax_mosaic_kernel_on_hopper; H200 probes: equal at every Llama-3-8B point).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plmg

from bispec import common
from bispec import matmul as spec

_SWIZZLE = 128  # bytes: one K tile row of 64 bf16/fp16 (BLOCK_K) is one 128-byte swizzle span
_EPILOGUE_ROWS = 64  # the output leaves through shared memory in slabs of this many rows (room for more stages)


def _transforms(itemsize: int):
    return plmg.TilingTransform((8, _SWIZZLE // itemsize)), plmg.SwizzleTransform(_SWIZZLE)


def _kernel(a_gmem, b_gmem, *refs, m: int, n: int, p: spec.Plan, weight_nk: bool):
    bias_gmem, out_gmem = refs if len(refs) == 2 else (None, refs[0])
    batch, shared_b = a_gmem.shape[0], b_gmem.shape[0] == 1
    t = p.tiling
    wgs = t.warpgroups
    width = t.block_n // wgs  # each compute warpgroup's columns
    tiles_m, tiles_n = common.cdiv(m, t.block_m), n // t.block_n
    xf = _transforms(jnp.dtype(a_gmem.dtype).itemsize)
    b_block = (t.block_n, p.block_k) if weight_nk else (p.block_k, t.block_n)
    # A lone compute warpgroup leaves its last wgmma in flight while it waits for the next K tile (holding that
    # slot one step longer); several keep the tensor cores busy between them, and wait for theirs (H200 probe).
    in_flight = 1 if wgs == 1 else 0

    def pipeline(body, context):
        return plmg.emit_pipeline_warp_specialized(
            body, grid=(p.k_tiles,), memory_registers=40, wg_axis="wg", num_compute_wgs=wgs,
            max_concurrent_steps=t.num_stages, compute_context=context,
            in_specs=[plmg.BlockSpec((t.block_m, p.block_k), lambda kt: (0, kt), transforms=xf,
                                     delay_release=in_flight),
                      plmg.BlockSpec(b_block, (lambda kt: (0, kt)) if weight_nk else (lambda kt: (kt, 0)),
                                     transforms=xf, delay_release=in_flight)])

    def scoped(allocs, out_smem, bias_smem=None, bias_arrived=None):
        wg = lax.axis_index("wg")

        @plmg.nd_loop((batch * tiles_m * tiles_n,), collective_axes="sm")
        def _tile(info):
            bt = info.index[0] // (tiles_m * tiles_n)
            pid_m, pid_n = spec.tile_of(info.index[0] % (tiles_m * tiles_n), tiles_m, tiles_n, t.group_m, jnp.minimum)
            a_bt, b_bt, out_bt = a_gmem.at[bt], b_gmem.at[0 if shared_b else bt], out_gmem.at[bt]
            rows = pl.ds(pid_m * t.block_m, t.block_m)
            cols = pl.ds(pid_n * t.block_n, t.block_n)
            mine = pl.ds(wg * width, width)

            def step(_, a_smem, b_smem, acc):
                b = b_smem.at[mine].transpose((1, 0)) if weight_nk else b_smem.at[:, mine]
                plmg.wgmma(acc, a_smem, b)
                plmg.wgmma_wait(in_flight)  # then the slot in_flight steps back returns to the memory warpgroup
                return acc

            def context(run):
                if bias_gmem is not None:  # this warpgroup's bias columns, loaded while its K loop runs
                    plmg.copy_gmem_to_smem(bias_gmem.at[pl.ds(pid_n * t.block_n + wg * width, width)],
                                           bias_smem.at[wg], bias_arrived.at[wg])

                def with_acc(acc):
                    run(acc)
                    total = acc[...]
                    if bias_gmem is not None:  # added once in fp32 after the whole K reduction, as bitorch's epilogue
                        plmg.barrier_wait(bias_arrived.at[wg])
                        total = total + bias_smem[wg].astype(jnp.float32)[None, :]
                    total = total.astype(out_smem.dtype)
                    for r in range(0, t.block_m, _EPILOGUE_ROWS):
                        plmg.wait_smem_to_gmem(0, wait_read_only=True)  # the slab before has left smem
                        out_smem[wg] = total[r:r + _EPILOGUE_ROWS]
                        plmg.commit_smem()
                        plmg.copy_smem_to_gmem(out_smem.at[wg], out_bt.at[
                            pl.ds(pid_m * t.block_m + r, _EPILOGUE_ROWS), pl.ds(pid_n * t.block_n + wg * width, width)])
                pl.run_scoped(with_acc, plmg.ACC((t.block_m, width), jnp.float32))

            pipeline(step, context)(a_bt.at[rows, :], b_bt.at[cols, :] if weight_nk else b_bt.at[:, cols],
                                    allocations=allocs)
        plmg.wait_smem_to_gmem(0)

    ignore = lambda *_, **__: None  # noqa: E731  (allocations do not depend on the bodies)
    bias_scratch = [] if bias_gmem is None else [plmg.SMEM((wgs, width), bias_gmem.dtype),
                                                 plmg.Barrier(num_arrivals=1, num_barriers=wgs)]
    pl.run_scoped(scoped, pipeline(ignore, ignore).get_allocations(a_gmem.at[0], b_gmem.at[0]),
                  plmg.SMEM((wgs, _EPILOGUE_ROWS, width), out_gmem.dtype, transforms=xf), *bias_scratch,
                  collective_axes="wg")


def matmul(a: jax.Array, b: jax.Array, p: spec.Plan, *, weight_nk: bool, sms: int, bias: jax.Array | None = None,
           interpret=None) -> jax.Array:
    """a (B, M, K) @ b (B or 1, K, N), or @ b.T for b (1, N, K) with weight_nk, [+ bias (N,)] -> (B, M, N), with the
    Mosaic tile p.tiling over `sms` programs (interpret: Mosaic GPU's CPU interpreter's params, for the tests; it
    runs the (K, N) layout)."""
    batch, m, _ = a.shape
    n = b.shape[1] if weight_nk else b.shape[2]
    assert spec.mosaic_fits(p.tiling, m, n, p.k) and p.k == a.shape[2], (p, a.shape, b.shape)
    return plmg.kernel(
        functools.partial(_kernel, m=m, n=n, p=p, weight_nk=weight_nk),
        out_type=jax.ShapeDtypeStruct((batch, m, n), a.dtype), grid=(sms,), grid_names=("sm",),
        num_threads=p.tiling.warpgroups + 1, thread_name="wg", kernel_name="bijax_matmul_mosaic", interpret=interpret,
        compiler_params=plmg.CompilerParams(lowering_semantics=plmg.LoweringSemantics.Warpgroup))(
            a, b, *([] if bias is None else [bias]))
