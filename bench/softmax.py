"""softmax over an LLM vocabulary across the token sweep; bench/log_softmax.py times log_softmax alike.

Bytes counted per call: read x, write out (x's dtype).
"""
from __future__ import annotations

import jax
import torch

import bijax
import bitorch
from bench import sweep, timing
from bispec import softmax as spec

SIZE, CPU_SIZE = spec.FIGURE_VOCAB, 1000


def lines(op: str) -> dict[str, str]:
    return {
        "torch_eager": f"Non-batch-invariant (CUDA): torch.{op}",
        "torch_compile": f"Non-batch-invariant: torch.compile of torch.{op}",
        "xla": f"Non-batch-invariant: XLA jit of jax.nn.{op}",
        **sweep.DYNAMIC_COMPILE_LINE,
        **sweep.OUR_LINES,
        **sweep.COPY_LIMIT_LINE,
    }


LINES = lines("softmax")


def title(dtype: str, vocab: int, op: str = "softmax") -> str:
    return f"{op} over the vocabulary, {dtype}, vocab {vocab}"


def run(tokens_sweep, vocab: int, dtype: str, reps: int, op: str = "softmax") -> tuple[dict, list[dict]]:
    tdtype = getattr(torch, dtype)
    itemsize = tdtype.itemsize

    def nbytes(tokens):
        return spec.bytes_moved(tokens, vocab, itemsize, itemsize)

    def call_inputs(tokens):  # logits of LLM-like spread
        return (3 * torch.randn(tokens, vocab, device=timing.DEVICE).to(tdtype),)

    native_t, native_j = getattr(torch, op), getattr(jax.nn, op)
    def eager(x):
        return native_t(x, -1)

    torch_lines = {"torch_eager": eager, "bitorch": getattr(bitorch, op)}
    jax_lines = {"xla": lambda x: native_j(x, axis=-1), "bijax": getattr(bijax, op)}  # sweep jits them
    meta, rows = sweep.run(tokens_sweep, call_inputs, nbytes, torch_lines, jax_lines, reps, compile_peer=eager)
    meta.update(vocab=vocab, dtype=dtype, op=op)
    return meta, rows
