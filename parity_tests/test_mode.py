"""bitorch.batch_invariant_mode: torch's own ops (F.linear, torch.bmm, softmax, mean, ...) run bitorch's kernels."""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests import harness

torch = pytest.importorskip("torch")
F = torch.nn.functional
bitorch = pytest.importorskip("bitorch")

TORCH = harness.TORCH
DTYPE = "bfloat16"


def _t(rng, *shape):
    return TORCH.asarray(harness.random_array(rng, shape, DTYPE))


def _native_and_ours(rng):
    """(what, torch's own call, bitorch's op on the same inputs) for each op the mode routes."""
    x, w, b = _t(rng, 5, 96), _t(rng, 40, 96), _t(rng, 40)
    x3, w3 = _t(rng, 2, 5, 96), _t(rng, 2, 96, 40)
    logits = _t(rng, 3, 1000)
    return [
        ("F.linear with bias (addmm)", lambda: F.linear(x, w, b), lambda: bitorch.linear(x, w, b)),
        ("F.linear (mm)", lambda: F.linear(x, w), lambda: bitorch.linear(x, w)),
        ("torch.mm", lambda: torch.mm(x, w.t()), lambda: bitorch.matmul(x, w.t())),
        ("torch.bmm", lambda: torch.bmm(x3, w3), lambda: bitorch.bmm(x3, w3)),
        ("torch.matmul 3-D @ 2-D", lambda: torch.matmul(x3, w.t()), lambda: bitorch.linear(x3, w)),
        ("torch.softmax", lambda: torch.softmax(logits, -1), lambda: bitorch.softmax(logits, -1)),
        ("F.log_softmax fp32 out", lambda: F.log_softmax(logits, -1, dtype=torch.float32),
         lambda: bitorch.log_softmax(logits.float(), -1)),
        ("Tensor.mean", lambda: logits.mean(-1), lambda: bitorch.mean(logits, -1)),
        ("torch.sum over dims", lambda: torch.sum(x3, dim=(0, 2), keepdim=True),
         lambda: bitorch.sum(x3, (0, 2), keepdim=True)),
    ]


def test_mode_routes_torch_ops_to_bitorch(rng):
    """Inside the mode each torch call launches a bitorch kernel and gives bitorch's op's bits; outside, none."""
    for what, native, ours in _native_and_ours(rng):
        expected = TORCH.numpy(ours())
        before = sum(bitorch.launches.values())
        with bitorch.batch_invariant_mode():
            got = TORCH.numpy(native())
        assert sum(bitorch.launches.values()) > before, f"{what}: no bitorch kernel ran in the mode"
        harness.assert_bitwise_equal(got, expected, f"{what} in the mode vs bitorch")
        before = sum(bitorch.launches.values())
        native()
        assert sum(bitorch.launches.values()) == before, f"{what}: a bitorch kernel ran outside the mode"


def test_mode_makes_model_code_batch_invariant(rng):
    """A two-layer MLP written with plain torch calls gives each row the same bits alone and in a batch."""
    w1, b1, w2 = _t(rng, 64, 96), _t(rng, 64), _t(rng, 48, 64)

    def mlp(inputs):
        x = TORCH.asarray(inputs["x"])
        h = F.linear(x, w1, b1)
        out = F.log_softmax(F.linear(h - h.mean(-1, keepdim=True), w2), dim=-1)
        return [TORCH.numpy(out)]

    with bitorch.batch_invariant_mode():
        harness.assert_batch_invariant(mlp, lambda n: {"x": harness.random_array(rng, (n, 96), DTYPE)},
                                       batch_sizes=(1, 3, 199))


def test_mode_nests_and_restores():
    assert not bitorch.is_batch_invariant_mode()
    with bitorch.batch_invariant_mode():
        with bitorch.batch_invariant_mode():
            assert bitorch.is_batch_invariant_mode()
        assert bitorch.is_batch_invariant_mode()
    assert not bitorch.is_batch_invariant_mode()
    bitorch.set_batch_invariant_mode(True)
    try:
        assert bitorch.is_batch_invariant_mode()
    finally:
        bitorch.set_batch_invariant_mode(False)
    assert not bitorch.is_batch_invariant_mode()


BAD_CALLS = [
    ("addmm beta", lambda x, w, b: torch.addmm(b, x, w.t(), beta=0.5), ValueError, "beta"),
    ("addmm alpha", lambda x, w, b: torch.addmm(b, x, w.t(), alpha=2), ValueError, "alpha"),
    ("addmm 2-D input", lambda x, w, b: torch.addmm(torch.zeros_like(x @ w.t()), x, w.t()), ValueError, "input"),
    ("mm of integers", lambda x, w, b: torch.mm(x.to(torch.int32), w.t().to(torch.int32)), TypeError, "a"),
    ("softmax of integers", lambda x, w, b: torch.ops.aten._softmax(x.to(torch.int32), -1, False), TypeError, "x"),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)), ids=[c[0] for c in BAD_CALLS])
def test_mode_refuses_what_it_cannot_run(rng, case):
    """In the mode a call the kernels cannot take raises, naming the argument, rather than run torch's kernel."""
    x, w, b = _t(rng, 5, 96), _t(rng, 40, 96), _t(rng, 40)
    name, call, exc, arg = BAD_CALLS[case]
    expected = [(name, lambda: call(x, w, b), exc, arg)]
    with bitorch.batch_invariant_mode():
        harness.assert_bad_call_names_argument(expected, 0, 1)
