"""layer_norm in both frameworks: reference, batch invariance, native and cross-framework parity, bad input."""
import importlib
import math

import numpy as np
import pytest

from bispec import common
from bispec import layer_norm as spec
from parity_tests import harness
from parity_tests.harness import JAX, TORCH

DTYPES = common.FLOAT_DTYPES
# (weight, bias) given or not; "affine" is the default case everywhere else.
AFFINE = {"affine": (True, True), "weight": (True, False), "bias": (False, True), "plain": (False, False)}


def layer_norm(backend):
    """The op itself (the module path works whether or not the package re-exports it)."""
    return importlib.import_module(f"{backend.module_name}.layer_norm").layer_norm


def make_inputs(rng, rows, hidden, dtype, affine="affine"):
    has_weight, has_bias = AFFINE[affine]
    inputs = {"x": harness.random_array(rng, (rows, hidden), dtype)}
    if has_weight:
        inputs["_weight"] = harness.random_array(rng, (hidden,), dtype)
    if has_bias:
        inputs["_bias"] = harness.random_array(rng, (hidden,), dtype)
    return inputs


def run(backend, inputs, eps=spec.DEFAULT_EPS):
    args = {k.lstrip("_"): backend.asarray(v) for k, v in inputs.items()}
    return (backend.numpy(layer_norm(backend)(args["x"], args.get("weight"), args.get("bias"), eps)),)


def reference(inputs, eps=spec.DEFAULT_EPS):
    return spec.reference(inputs["x"], inputs.get("_weight"), inputs.get("_bias"), eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,hidden", [(1, 8192), (3, 5120), (199, 1000), (4, 1)])
def test_matches_reference(backend, rng, dtype, rows, hidden):
    inputs = make_inputs(rng, rows, hidden, dtype)
    harness.assert_close(run(backend, inputs)[0], reference(inputs), dtype, "out")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["weight", "bias", "plain"])
def test_matches_reference_without_weight_or_bias(backend, rng, dtype, affine):
    inputs = make_inputs(rng, 3, 1000, dtype, affine)
    harness.assert_close(run(backend, inputs, eps=1e-3)[0], reference(inputs, eps=1e-3), dtype, "out")


@pytest.mark.parametrize("dtype,hidden,affine",
                         [(dtype, 8192, "affine") for dtype in DTYPES] + [("bfloat16", 1000, "bias"),
                                                                           ("float32", 1000, "affine")])
def test_batch_invariant(backend, rng, dtype, hidden, affine):
    # At hidden 1000 the largest batch crosses the row count where the weight and bias loads move.
    sizes = (1, 3, 8, 199) + ((spec.WEIGHT_LATE_FROM_ROWS + 1,) if hidden < 2048 else ())
    harness.assert_batch_invariant(lambda inputs: run(backend, inputs),
                                   lambda n: make_inputs(rng, n, hidden, dtype, affine), batch_sizes=sizes)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_rows_in_block_or_apart(backend, rng, dtype, monkeypatch):
    """A split row gives the same bits kept in the row's block (its sums through tree_ptx on the GPU) or as a block
    of its own (bispec.layer_norm.SPLIT_IN_BLOCK)."""
    rows, hidden = 3, 8192 if harness.ON_GPU else 1000
    split = (spec.triton_split if backend is TORCH else spec.split)(rows, hidden, not harness.ON_GPU)
    assert split > 1, "the rows must be split"
    inputs = make_inputs(rng, rows, hidden, dtype)
    outs = []
    for flag in (False, True):
        monkeypatch.setattr(spec, "SPLIT_IN_BLOCK", flag)
        if backend is JAX:
            import jax

            jax.clear_caches()
        outs.append(run(backend, inputs)[0])
    harness.assert_bitwise_equal(outs[1], outs[0], "out, in the block vs apart")


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_native_op(backend, rng, dtype):
    inputs = make_inputs(rng, 7, 4096, dtype)
    got = run(backend, inputs)[0]
    x, w, b = (backend.asarray(inputs[k]) for k in ("x", "_weight", "_bias"))
    if backend is TORCH:
        import torch.nn.functional as F

        native = F.layer_norm(x, (x.shape[-1],), w, b, spec.DEFAULT_EPS)
    else:
        import jax
        import jax.numpy as jnp

        @jax.jit
        def native_fn(x, w, b):
            x32 = x.astype(jnp.float32)
            d = x32 - jnp.mean(x32, axis=-1, keepdims=True)
            rstd = jax.lax.rsqrt(jnp.mean(d * d, axis=-1, keepdims=True) + spec.DEFAULT_EPS)
            return (d * rstd * w.astype(jnp.float32) + b.astype(jnp.float32)).astype(x.dtype)

        native = native_fn(x, w, b)
    harness.assert_close(got, backend.numpy(native), dtype, "out vs native")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [8192, 5120, 1000])
def test_frameworks_agree(rng, dtype, hidden):
    inputs = make_inputs(rng, 64 if harness.ON_GPU else 8, hidden, dtype)
    from_torch, from_jax = run(TORCH, inputs)[0], run(JAX, inputs)[0]
    if harness.ON_GPU:  # the same Triton program through two compilers: equal bits (bispec.layer_norm)
        harness.assert_bitwise_equal(from_torch, from_jax, "out, torch vs jax")
    else:  # two interpreters round differently inside the sum
        harness.assert_close(from_torch, from_jax, dtype, "out, torch vs jax", ulps=1.0)


def test_nan_stays_in_its_row(backend, rng):
    inputs = make_inputs(rng, 5, 1000, "bfloat16")
    inputs["x"][2, 17] = np.nan
    out = run(backend, inputs)[0]
    assert np.isnan(np.asarray(out[2], np.float32)).all()
    rest = [0, 1, 3, 4]
    assert not np.isnan(np.asarray(out[rest], np.float32)).any()
    harness.assert_bitwise_equal(out[rest], run(backend, {k: (v if k.startswith("_") else v[rest])
                                                          for k, v in inputs.items()})[0], "rows beside the NaN row")


def test_leading_dims_and_empty(backend, rng):
    inputs = make_inputs(rng, 6, 1000, "float32")
    f = layer_norm(backend)
    x, w, b = (backend.asarray(inputs[k]) for k in ("x", "_weight", "_bias"))
    out = backend.numpy(f(x.reshape(2, 3, 1000), w, b))
    assert out.shape == (2, 3, 1000)
    harness.assert_bitwise_equal(out.reshape(6, 1000), run(backend, inputs)[0], "(2, 3, h) vs (6, h)")
    empty = f(backend.asarray(np.zeros((0, 1000), np.float32)), w, b)
    assert tuple(empty.shape) == (0, 1000)


def _bad_calls(backend, rng):
    """(name, call, exception, argument the message must name)."""
    A = lambda shape, dtype="bfloat16": backend.asarray(harness.random_array(rng, shape, dtype))  # noqa: E731
    f = layer_norm(backend)
    x, w, b = A((4, 64)), A((64,)), A((64,))
    ints = backend.asarray(np.arange(256, dtype=np.int32).reshape(4, 64))
    return [
        ("weight length", lambda: f(x, A((63,)), b), ValueError, "weight"),
        ("weight dtype", lambda: f(x, A((64,), "float32"), b), TypeError, "weight"),
        ("bias length", lambda: f(x, w, A((65,))), ValueError, "bias"),
        ("bias 2-D", lambda: f(x, None, A((1, 64))), ValueError, "bias"),
        ("bias dtype", lambda: f(x, w, A((64,), "float16")), TypeError, "bias"),
        ("integer x", lambda: f(ints, w, b), TypeError, "x"),
        ("zero hidden", lambda: f(A((4, 0)), A((0,)), A((0,))), ValueError, "x"),
        ("scalar x", lambda: f(backend.asarray(np.float32(1.0))), ValueError, "x"),
        ("negative eps", lambda: f(x, w, b, -1e-5), ValueError, "eps"),
        ("nan eps", lambda: f(x, w, b, math.nan), ValueError, "eps"),
    ]


BAD_CASES = 10


@pytest.mark.parametrize("case", range(BAD_CASES))
def test_bad_input_names_the_argument(backend, rng, case):
    harness.assert_bad_call_names_argument(_bad_calls(backend, rng), case, BAD_CASES)


def test_torch_strided_rows_and_bad_layouts(rng):
    import torch

    f = layer_norm(TORCH)
    wide, views = harness.torch_unpacked_rows(rng)
    w, b = (TORCH.asarray(harness.random_array(rng, (1000,), "bfloat16")) for _ in range(2))
    for view in views:
        assert torch.equal(f(view, w, b), f(view.contiguous(), w, b))
    with pytest.raises(ValueError, match="^x:.*stride"):
        f(wide[:, ::2], w, b)
    with pytest.raises(ValueError, match="^bias:.*stride"):
        f(wide[:, :1000], w, wide[0, ::2])
    with pytest.raises(ValueError, match="^weight:.*runs on"):
        f(wide[:, :1000], torch.empty(1000, dtype=torch.bfloat16, device=harness.OTHER_TORCH_DEVICE))


def test_torch_kernel_ran_and_custom_op_traces(rng):
    import torch

    import bitorch

    f = layer_norm(TORCH)
    x, w, b = (TORCH.asarray(harness.random_array(rng, s, "float32")) for s in ((3, 256), (256,), (256,)))
    before = bitorch.launches["layer_norm_kernel"]
    f(x, w, b)
    assert bitorch.launches["layer_norm_kernel"] == before + 1
    for weight, bias in ((w, b), (w, None), (None, b), (None, None)):
        torch.library.opcheck(torch.ops.bitorch.layer_norm.default, (x, weight, bias, 1e-5))
    compiled = torch.compile(lambda x, w, b: f(x, w, b), backend="aot_eager", fullgraph=True)
    assert torch.equal(compiled(x, w, b), f(x, w, b))


def test_jax_kernel_ran_jit_and_vmap(rng):
    import jax

    f = layer_norm(JAX)
    x = JAX.asarray(harness.random_array(rng, (2, 3, 512), "bfloat16"))
    w, b = (JAX.asarray(harness.random_array(rng, (512,), "bfloat16")) for _ in range(2))
    fn = lambda x: f(x, w, b)  # noqa: E731
    jaxpr = str(jax.make_jaxpr(fn)(x))
    assert "pallas_call" in jaxpr and "name=bijax_layer_norm" in jaxpr
    eager = fn(x)
    for got in (jax.jit(fn)(x), jax.vmap(fn)(x)):
        harness.assert_bitwise_equal(np.asarray(got), np.asarray(eager), "jit/vmap vs eager")
    # The GPU path lowers to a Triton kernel with the explicit FMA (checked here without a GPU by lowering for CUDA).
    text = harness.cuda_lowering(lambda x: f(x, w, b), x)
    assert "__gpu$xla.gpu.triton" in text and "fma.rn.f32" in text
