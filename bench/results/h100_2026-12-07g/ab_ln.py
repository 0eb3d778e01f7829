"""bitorch layer_norm (weight and bias, hidden 8192 bf16) with its sums through bispec.common.tree_ptx at every row
count (bispec.layer_norm.in_block forced on: split rows kept in the row's block, whole rows summed by the PTX)
against the shipped kernel; XLA and bijax beside (bijax's whole rows take the PTX already). Medians of 5 rounds of
each line's mean time (bench.tune._rounds), bits checked against the shipped kernel. The split rows alone, in both
frameworks, are bench.tune layer_norm_in_block's.
    python ab_ln.py [tokens ...]"""
import sys

import jax
import torch

import bijax
import bitorch
from bench.tune import _jax_ms, _norm_sets, _rounds, _setter, _torch_ms, _xla_layer_norm_ms
from bispec import layer_norm as spec


def main():
    shipped, ptx_sums = _setter(spec, in_block=spec.in_block), _setter(spec, in_block=lambda split_: True)
    call = lambda x, r, w, b: bitorch.layer_norm(x, w, b)  # noqa: E731
    for m in [int(t) for t in sys.argv[1:]] or [1, 8, 32, 128]:
        sets, jsets = _norm_sets(m, 8192, 2)
        want = call(*sets[0])
        ptx_sums()
        print(f"ab_ln tokens={m}: ptx sums, bits equal to bitorch: {torch.equal(call(*sets[0]), want)}", flush=True)
        shipped()
        fixed = {"xla": lambda: _xla_layer_norm_ms(jsets),
                 "bijax": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)), jsets)}
        _rounds("ab_ln", m, fixed, {"ptx sums": ptx_sums, "shipped": shipped},
                {"bitorch": lambda: _torch_ms(call, sets)}, rounds=5)


if __name__ == "__main__":
    main()
