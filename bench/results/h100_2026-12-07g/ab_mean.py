"""bitorch's mean over the last dim (hidden 8192 bf16) against a persistent variant of its row kernel: a grid of
SLOTS programs an SM, each taking rows pid, pid + grid, ... (the same tree a row, so the same bits; which program
sums a row changes nothing), its loop pipelined NUM_STAGES deep by Triton. torch.compile and bijax beside; medians
of 5 rounds of each line's mean time (bench.tune's helpers), bits checked against the shipped kernel.
    python ab_mean.py [tokens ...]"""
import sys

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import reduce as spec
from bitorch._triton_helpers import cast_rtne, tree_sum


@triton.jit
def mean_persistent(x_ptr, out_ptr, ROWS, R: tl.constexpr, INV_R: tl.constexpr, VEC: tl.constexpr,
                    WARPS: tl.constexpr, NUM_STAGES: tl.constexpr):
    cols = tl.arange(0, R)
    for row in tl.range(tl.program_id(0), ROWS, tl.num_programs(0), num_stages=NUM_STAGES):
        v = tl.load(x_ptr + row.to(tl.int64) * R + cols, eviction_policy="evict_first").to(tl.float32)
        tl.store(out_ptr + row, cast_rtne(tree_sum(v, VEC, WARPS) * INV_R, out_ptr.dtype.element_ty))


def persistent(slots, stages):
    sms = torch.cuda.get_device_properties(0).multi_processor_count

    def run(x):
        rows, r = x.shape
        out = torch.empty(rows, dtype=x.dtype, device=x.device)
        mean_persistent[(min(rows, slots * sms),)](x, out, rows, R=r, INV_R=common.inv_f32(r),
                                                   VEC=common.vector_width(r, 2), WARPS=spec.row_warps(r),
                                                   NUM_STAGES=stages, num_warps=spec.row_warps(r))
        return out
    return run


def main():
    import jax

    import bijax
    import bitorch
    from bench.tune import _jax_ms, _rounds, _sets, _torch_ms

    peer = torch.compile(lambda x: torch.mean(x, -1))
    for m in [int(t) for t in sys.argv[1:]] or [2048, 4096]:
        sets, jsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
        shipped = lambda x: bitorch.mean(x, -1)  # noqa: E731
        want = shipped(sets[0][0])
        lines = {"torch.compile": lambda: _torch_ms(peer, sets),
                 "bijax": lambda: _jax_ms(jax.jit(lambda x: bijax.mean(x, -1)), jsets),
                 "bitorch": lambda: _torch_ms(shipped, sets)}
        for slots, stages in ((4, 1), (4, 2), (2, 2), (8, 1)):
            name, fn = f"persist{slots}x{stages}", persistent(slots, stages)
            print(f"ab_mean tokens={m}: {name} bits equal to bitorch: {torch.equal(fn(sets[0][0]), want)}", flush=True)
            lines[name] = lambda fn=fn: _torch_ms(fn, sets)
        _rounds("ab_mean", m, lines, {}, {}, rounds=5)


if __name__ == "__main__":
    main()
