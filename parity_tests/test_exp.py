"""exp_f32, the kernels' shared exp (bispec.common.EXP_RULE): accuracy against float64, the edges, and
(on the GPU) the same bits from the Triton and the Pallas twin."""
import functools

import numpy as np
import pytest

from bispec import common
from parity_tests import harness
from parity_tests.harness import JAX, TORCH

BLOCK = 1024
# The edges 89 and +inf overflow to +inf on purpose; NumPy (the interpreters) warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


_tlaunch = pytest.importorskip("bitorch._launch")  # before triton: it settles TRITON_INTERPRET
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from bitorch._triton_helpers import exp_f32  # noqa: E402


@triton.jit
def _exp_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, exp_f32(tl.load(x_ptr + offs)))


def _triton_exp(x: np.ndarray) -> np.ndarray:
    xt = TORCH.asarray(x)
    out = xt.clone()
    _tlaunch.launch(_exp_kernel, (x.size // BLOCK,), xt, out, BLOCK=BLOCK)
    return TORCH.numpy(out)


def _pallas_exp(x: np.ndarray) -> np.ndarray:
    import jax
    from jax.experimental import pallas as pl

    from bijax import _launch
    from bijax._kernel_helpers import exp_f32 as pallas_exp_f32

    def kernel(x_ref, out_ref):
        out_ref[...] = pallas_exp_f32(x_ref[...])

    block = pl.BlockSpec((BLOCK,), lambda i: (i,))
    call = _launch.pallas_call(kernel, name="test_exp", grid=(x.size // BLOCK,), in_specs=[block], out_specs=block,
                               out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype), num_warps=4)
    return JAX.numpy(jax.jit(call)(JAX.asarray(x)))


EXPS = {"torch": _triton_exp, "jax": _pallas_exp}


@functools.lru_cache(maxsize=1)
def _inputs() -> np.ndarray:
    """Random fp32 up to 88 (dense below 0, where softmax lives), then the edges."""
    rng = np.random.default_rng()
    n = (1 << 17) if harness.ON_GPU else (1 << 13)
    wide = rng.uniform(-110, 88, n // 2)
    near = -np.abs(rng.standard_normal(n // 2)) * 8
    edges = [0.0, -0.0, 1.0, -1.0, -np.inf, np.inf, np.nan, 88.0, 89.0, -87.33, -87.34, -103.97, 1e-30, -1e-30,
             0.34657359, -0.34657359, -1e-45]
    x = np.concatenate([wide, near, edges]).astype(np.float32)
    return np.concatenate([x, np.zeros((-x.size) % BLOCK, np.float32)])


def test_accuracy(backend):
    x = _inputs()
    got = EXPS[backend.name](x).astype(np.float64)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
    # Results within the error bound of 2**-126 may flush or not: checked in neither group.
    normal = (exact >= 2 * common.FLT_MIN) & (exact <= np.finfo(np.float32).max)
    ulps = np.abs(got[normal] - exact[normal]) / (np.spacing(exact[normal].astype(np.float32)).astype(np.float64))
    excess = ulps / (common.EXP_ULPS[0] + common.EXP_ULPS[1] * np.abs(x[normal]))
    worst = np.argmax(excess)
    assert excess[worst] <= 1.0, f"{backend.name}: {ulps[worst]:.2f} ulps at x = {x[normal][worst]!r}"
    assert (got[exact < common.FLT_MIN / 2] == 0).all(), "below the normal range exp must flush to 0"
    assert (got[x == 0] == 1).all() and (got[x == -np.inf] == 0).all() and (got[x >= 89] == np.inf).all()
    assert np.isnan(got[np.isnan(x)]).all() and not np.isnan(got[~np.isnan(x)]).any()


@pytest.mark.skipif(not harness.ON_GPU, reason="the twins' bits agree on the GPU; interpreters round fp64 FMAs apart")
def test_frameworks_agree():
    x = _inputs()
    harness.assert_bitwise_equal(_triton_exp(x), _pallas_exp(x), "exp_f32, Triton vs Pallas")
