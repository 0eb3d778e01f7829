"""The shared test base: backends, random inputs, bitwise and tolerance checks."""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import pytest

from bispec import common

ON_GPU: bool
try:
    import torch

    ON_GPU = torch.cuda.is_available()
except ImportError:  # a JAX-only install
    ON_GPU = False
# A torch device bitorch does not run on here (its tensors must be refused by name).
OTHER_TORCH_DEVICE = "cpu" if ON_GPU else "meta"


@dataclasses.dataclass(frozen=True)
class Backend:
    """One framework: how arrays go in and out, and its module of ops."""
    name: str
    module_name: str

    @property
    def ops(self):
        import importlib

        return importlib.import_module(self.module_name)

    def asarray(self, a: np.ndarray):
        if self.name == "torch":
            import bitorch

            dtype = getattr(torch, a.dtype.name)
            bits = torch.from_numpy(np.array(a, order="C").view(f"i{a.dtype.itemsize}"))
            return bits.view(dtype).to(bitorch._launch.DEVICE)
        import jax.numpy as jnp

        return jnp.asarray(a)

    def numpy(self, t) -> np.ndarray:
        if self.name == "torch":
            dtype = common.NUMPY_DTYPES[common.dtype_name(t.dtype)]
            return t.detach().cpu().view(getattr(torch, f"int{dtype.itemsize * 8}")).numpy().view(dtype)
        return np.asarray(t)


BACKENDS = (Backend("torch", "bitorch"), Backend("jax", "bijax"))
TORCH, JAX = BACKENDS


def cuda_lowering(fn, *args) -> str:
    """bijax._launch.cuda_lowering (imported when called: jax loads only for the tests that use it)."""
    from bijax import _launch

    return _launch.cuda_lowering(fn, *args)


def random_array(rng: np.random.Generator, shape: Sequence[int], dtype: str, scale: float = 1.0) -> np.ndarray:
    """Normal random values rounded to `dtype`, with a random per-row scale so rows differ in magnitude."""
    row_scale = np.exp(rng.uniform(-2, 2, size=(*shape[:-1], 1))) if len(shape) > 1 else 1.0
    return common.round_to(rng.standard_normal(shape) * scale * row_scale, dtype)


def bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_bitwise_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    diff = bits(actual) != bits(expected)
    assert not diff.any(), f"{what}: {diff.sum()} of {diff.size} elements differ in their bits, first at {np.argwhere(diff)[0]}"


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: str, what: str, ulps: float = 2.0) -> None:
    rtol, atol = common.tolerance(dtype, ulps)
    assert not np.isnan(np.asarray(actual, np.float64)).any(), f"{what}: NaN in output"
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol, err_msg=what)


def torch_unpacked_rows(rng: np.random.Generator):
    """A (6, 2000) bf16 torch tensor and two (6, 1000) views of it whose rows are not packed: strided rows, and
    rows starting 2 bytes past a 16-byte boundary (kernels must give them the packed rows' bits)."""
    wide = TORCH.asarray(random_array(rng, (6, 2000), "bfloat16"))
    return wide, (wide[:, 500:1500], wide.view(-1)[1:6001].view(6, 1000))


def assert_bad_call_names_argument(bad_calls: Sequence[tuple], case: int, cases: int) -> None:
    """Case `case` of a test module's (name, call, exception, argument) list raises that exception with a message
    that starts with the argument's name. `cases`, the module's parametrized count, must be the list's length."""
    assert len(bad_calls) == cases, f"{len(bad_calls)} bad calls listed, {cases} parametrized"
    _name, call, exc, arg = bad_calls[case]
    with pytest.raises(exc, match=rf"^{arg}:"):
        call()


def assert_batch_invariant(run: Callable[[dict], Sequence[np.ndarray]], make_rows: Callable[[int], dict],
                           batch_sizes: Sequence[int] = (1, 3, 8, 199)) -> None:
    """Each probe row gives the same bits alone and inside batches of every size, at first, middle and last place.

    `make_rows(n)` draws n fresh rows (a dict of arrays with rows first, plus arrays
    shared by all rows under keys starting with '_', which the probes' draw fixes);
    `run(inputs)` returns the outputs, rows first.
    """
    probes = make_rows(3)
    alone = [run(_rows(probes, [i])) for i in range(3)]
    for size in batch_sizes:
        batch = make_rows(size)
        places = sorted({0, size // 2, size - 1})
        for probe, place in enumerate(places):
            for key, value in probes.items():
                if key.startswith("_"):
                    batch[key] = value
                else:
                    batch[key][place] = value[probe]
        outs = run(batch)
        for probe, place in enumerate(places):
            for k, (got, ref) in enumerate(zip(outs, alone[probe])):
                assert_bitwise_equal(got[place:place + 1], ref, f"output {k}, row at {place} of batch {size}")


def _rows(inputs: dict, index: list[int]) -> dict:
    return {k: (v if k.startswith("_") else v[index]) for k, v in inputs.items()}
