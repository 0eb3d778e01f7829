"""matmul / bmm / linear in both frameworks: reference, batch invariance, tilings, layouts, parity, bad input.

Interpreted matmuls are slow and every new shape costs a Pallas compile, so the
shapes are few, small and odd (K, N of 100 and 129 against BLOCK_K 64 / 32 and
BLOCK_N 128), and reused across tests (the jit cache lives for the session).
"""
import importlib
import re

import numpy as np
import pytest

from bispec import common
from bispec import matmul as spec
from parity_tests import harness
from parity_tests.harness import JAX, TORCH

# Triton's interpreter turns a 1-element loop bound into an int the way NumPy deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

DTYPES = common.FLOAT_DTYPES
K, N = 129, 100            # odd against every BLOCK_K and BLOCK_N: masked edges on both
LONG_K, LONG_N = 1000, 72  # 16 K tiles of 64, the last one masked
WIDE_N = 200               # past the widest two-block tile (128 + 64), so its second block holds real columns
BATCH_SIZES = (1, 2, 3, 7, 64, 199) + ((1024,) if harness.ON_GPU else ())


def arrays(rng, dtype, m=7, k=K, n=N, bias=True, batch=None):
    lead = (m,) if batch is None else (batch, m)
    out = {"a": harness.random_array(rng, (*lead, k), dtype),
           "_w": harness.random_array(rng, (n, k), dtype)}  # linear's weight layout; matmul gets its transpose
    if bias:
        out["_bias"] = harness.random_array(rng, (n,), dtype)
    return out


def bias_of(backend, inputs):
    return backend.asarray(inputs["_bias"]) if "_bias" in inputs else None


def ops_of(backend):
    """The op module (bitorch.matmul / bijax.matmul): found whether or not the package re-exports the ops."""
    return importlib.import_module(f"{backend.module_name}.matmul")


def call(backend, op, inputs, **kw):
    """Run `op` on numpy inputs ({'a', '_w', '_bias'}); returns the output as numpy."""
    a = backend.asarray(inputs["a"])
    w = inputs["_w"]
    bias = bias_of(backend, inputs)
    ops = ops_of(backend)
    if op == "linear":
        out = ops.linear(a, backend.asarray(w), bias, **kw)
    elif op == "matmul":
        out = ops.matmul(a, backend.asarray(np.ascontiguousarray(w.T)), bias, **kw)
    else:  # bmm: one weight per batch entry, (B, K, N)
        assert bias is None
        out = ops.bmm(a, backend.asarray(np.ascontiguousarray(np.swapaxes(w, -1, -2))), **kw)
    return backend.numpy(out)


def exact_and_bound(inputs, dtype, allow_tf32=False):
    b = np.swapaxes(inputs["_w"], -1, -2)
    bias = inputs.get("_bias")
    exact = spec.reference(inputs["a"], b, bias)
    return exact, spec.error_bound(inputs["a"], b, bias, dtype, allow_tf32, exact)


def assert_within(got, exact, bound, what):
    got = np.asarray(got, np.float64)
    assert got.shape == exact.shape, f"{what}: shape {got.shape} != {exact.shape}"
    assert not np.isnan(got).any(), f"{what}: NaN in output"
    bad = np.abs(got - exact) > bound
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements beyond spec.error_bound, first at {i}: "
                             f"got {got[i]!r}, exact {exact[i]!r}, bound {bound[i]!r}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["matmul", "linear", "bmm"])
def test_matches_reference(backend, rng, dtype, op):
    inputs = arrays(rng, dtype, bias=op != "bmm", batch=2 if op == "bmm" else None)
    if op == "bmm":
        inputs["_w"] = harness.random_array(rng, (2, N, K), dtype)
    assert_within(call(backend, op, inputs), *exact_and_bound(inputs, dtype), f"{op} vs float64")


def test_tf32_only_when_asked(backend, rng):
    """allow_tf32=True is held to the TF32 bound (the interpreters compute it in full fp32); the default is IEEE."""
    inputs = arrays(rng, "float32")
    assert_within(call(backend, "linear", inputs, allow_tf32=True), *exact_and_bound(inputs, "float32", True), "tf32")
    assert spec.plan(7, N, K, "float32").precision == "ieee" and spec.plan(7, N, K, "float32", True).precision == "tf32"
    assert spec.plan(7, N, K, "bfloat16", True).precision == "ieee"


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_invariant(backend, rng, dtype):
    """Every row alone and in batches of every size; the batches take different tiles."""
    assert spec.plan(1, N, K, dtype).tiling != spec.plan(199, N, K, dtype).tiling
    harness.assert_batch_invariant(lambda inputs: (call(backend, "linear", inputs),),
                                   lambda n: arrays(rng, dtype, m=n), BATCH_SIZES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tilings_agree(backend, rng, monkeypatch, dtype):
    """Every tile of the ladder gives the same bits on the same inputs (the contract lets the tile follow M)."""
    assert all(t.width < WIDE_N for t in spec.tilings(dtype) if t.block_n2)
    inputs = arrays(rng, dtype, m=5, k=LONG_K, n=WIDE_N)  # 16-byte rows: bitorch's TMA tiles run as TMA kernels
    # (TMA: bitorch's alone; Mosaic: bijax's where the tile divides the shape, test_jax_mosaic_kernel_on_hopper)
    ladder = [t for t in spec.tilings(dtype) if not t.mosaic and (backend is TORCH or not t.tma)]
    monkeypatch.setattr(spec, "DECODE_MAX_M", 0)
    monkeypatch.setattr(spec, "PALLAS_SWAPS", {})  # bijax runs each tile as forced
    monkeypatch.setattr(spec, "PALLAS_ONE_ROW_SWAPS", {})
    outs = []
    for tiling in ladder:
        monkeypatch.setitem(spec.LADDERS, dtype, (tiling,))
        outs.append(call(backend, "linear", inputs))
    for tiling, out in zip(ladder[1:], outs[1:]):
        harness.assert_bitwise_equal(out, outs[0], f"{tiling} vs {ladder[0]}")
    assert_within(outs[0], *exact_and_bound(inputs, dtype), "vs float64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_frameworks_agree(rng, dtype):
    for op, inputs in (("matmul", arrays(rng, dtype)), ("linear", arrays(rng, dtype, m=5, k=LONG_K, n=LONG_N))):
        from_torch, from_jax = call(TORCH, op, inputs), call(JAX, op, inputs)
        if harness.ON_GPU:  # one Triton program through two compilers: equal bits
            harness.assert_bitwise_equal(from_torch, from_jax, f"{op}, torch vs jax")
        else:  # two interpreters (NumPy's and XLA's CPU dot) may differ in the last fp32 bits
            bound = exact_and_bound(inputs, dtype)[1]
            assert_within(from_torch, from_jax.astype(np.float64), 2 * bound, f"{op}, torch vs jax")


def test_layouts_agree(backend, rng):
    """linear(x, W) == matmul(x, W.T) == bmm's entry: one reduction order whatever the layout or batch index."""
    inputs = arrays(rng, "bfloat16")
    lin, mm = call(backend, "linear", inputs), call(backend, "matmul", inputs)
    harness.assert_bitwise_equal(lin, mm, "linear vs matmul")
    other = arrays(rng, "bfloat16", bias=False)  # batch entry 0; the probe is entry 1
    bm = call(backend, "bmm", {"a": np.stack([other["a"], inputs["a"]]), "_w": np.stack([other["_w"], inputs["_w"]])})
    no_bias = call(backend, "linear", {k: v for k, v in inputs.items() if k != "_bias"})
    harness.assert_bitwise_equal(bm[1], no_bias, "bmm entry 1 vs linear without bias")


def test_torch_strided_operands(rng):
    """Transposed, sliced and expanded operands run in place (strides) and give the contiguous copies' bits."""
    import torch

    import bitorch

    dtype = "bfloat16"
    A = lambda shape: TORCH.asarray(harness.random_array(rng, shape, dtype))  # noqa: E731
    at, bt = A((K, 7)).t(), A((N, K)).t()                      # column-major a (7, K) and b (K, N)
    wide = A((7, 2 * K))[:, 3:3 + K]                           # rows 2K apart, odd start
    bias = A((2 * N,))[::2]                                    # strided bias
    for a, b in ((at, bt), (wide, bt), (at, bt.contiguous()), (wide.contiguous(), bt)):
        want = bitorch.matmul(a.contiguous(), b.contiguous(), bias.contiguous())
        assert torch.equal(bitorch.matmul(a, b, bias), want)
    w = A((N, 2 * K))[:, ::2]                                  # weight with K stride 2
    x = A((3, 4, K)).transpose(0, 1)                           # non-contiguous leading dims
    assert torch.equal(bitorch.linear(x, w, bias), bitorch.linear(x.contiguous(), w.contiguous(), bias.contiguous()))
    a3, b1 = A((3, 7, K)), A((1, K, N))
    expanded = b1.expand(3, K, N)                              # batch stride 0
    assert torch.equal(bitorch.bmm(a3, expanded), bitorch.bmm(a3, expanded.contiguous()))
    assert torch.equal(bitorch.bmm(a3.transpose(1, 2).contiguous().transpose(1, 2), expanded),
                       bitorch.bmm(a3, expanded))
    with pytest.raises(ValueError, match="^a:.*runs on"):
        bitorch.matmul(torch.empty(2, K, dtype=torch.bfloat16, device="meta"), b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_native_op(backend, rng, dtype):
    """torch.mm / F.linear / torch.bmm, or jnp.dot / jnp.matmul under jit at HIGHEST: both within the bound."""
    inputs = arrays(rng, dtype)
    bmm_inputs = {"a": inputs["a"][None], "_w": inputs["_w"][None]}
    ours = {op: call(backend, op, inputs) for op in ("linear", "matmul")}
    ours["bmm"] = call(backend, "bmm", bmm_inputs)
    x, w, bias = (backend.asarray(inputs[k]) for k in ("a", "_w", "_bias"))
    if backend is TORCH:
        import torch
        import torch.nn.functional as F

        native = {"linear": F.linear(x, w, bias), "matmul": torch.addmm(bias, x, w.t().contiguous()),
                  "bmm": torch.bmm(x[None], w.t()[None])}
    else:
        import jax
        import jax.numpy as jnp

        hi = jax.lax.Precision.HIGHEST
        native = {"linear": jax.jit(lambda x, w, b: (jnp.dot(x, w.T, precision=hi, preferred_element_type=jnp.float32)
                                                     + b.astype(jnp.float32)).astype(x.dtype))(x, w, bias),
                  "matmul": jax.jit(lambda x, w, b: (jnp.dot(x, w, precision=hi, preferred_element_type=jnp.float32)
                                                     + b.astype(jnp.float32)).astype(x.dtype))(x, w.T, bias),
                  "bmm": jax.jit(lambda x, w: jnp.matmul(x, w, precision=hi))(x[None], jnp.swapaxes(w, 0, 1)[None])}
    for op, got in ours.items():
        src = bmm_inputs if op == "bmm" else inputs
        bound = exact_and_bound(src, dtype)[1]
        assert_within(got, backend.numpy(native[op]).astype(np.float64), 2 * bound, f"{op} vs native")


def test_nan_stays_in_its_row(backend, rng):
    inputs = arrays(rng, "float32")
    clean = call(backend, "linear", inputs)
    inputs["a"][2, 17] = np.nan
    out = call(backend, "linear", inputs)
    assert np.isnan(out[2]).all()
    rest = [0, 1, 3, 4, 5, 6]
    harness.assert_bitwise_equal(out[rest], clean[rest], "rows beside the NaN row")


def test_zero_rows_give_positive_zero(backend, rng):
    """A zero row (padding) gives +0.0 everywhere: the accumulator starts from +0, so a sum of -0 products is +0
    (on the GPU this also checks that the MMA does not skip its zero accumulator)."""
    for k, n, m in ((K, N, 7), (LONG_K, LONG_N, 5)):
        inputs = arrays(rng, "bfloat16", m=m, k=k, n=n, bias=False)
        inputs["_w"] = -np.abs(inputs["_w"])  # 0 * negative = -0
        inputs["a"][1] = 0
        inputs["a"][3] = -0.0
        out = call(backend, "linear", inputs)
        assert not harness.bits(out[[1, 3]]).any(), f"K={k}: zero rows are not all +0.0"


def test_leading_dims_and_empty(backend, rng):
    inputs = arrays(rng, "float32", m=6)
    flat = call(backend, "linear", inputs)
    x = backend.asarray(inputs["a"].reshape(2, 3, K))
    w, bias = backend.asarray(inputs["_w"]), backend.asarray(inputs["_bias"])
    out = backend.numpy(ops_of(backend).linear(x, w, bias))
    harness.assert_bitwise_equal(out.reshape(6, N), flat, "(2, 3, K) vs (6, K)")
    one = backend.numpy(ops_of(backend).linear(backend.asarray(inputs["a"][4]), w, bias))
    harness.assert_bitwise_equal(one, flat[4], "1-D x vs its row in a batch")
    z = lambda *shape: backend.asarray(np.zeros(shape, np.float32))  # noqa: E731
    assert tuple(ops_of(backend).linear(z(0, K), w, bias).shape) == (0, N)
    assert tuple(ops_of(backend).linear(z(2, 0, K), w).shape) == (2, 0, N)
    assert tuple(ops_of(backend).matmul(z(0, K), z(K, N)).shape) == (0, N)
    assert tuple(ops_of(backend).matmul(z(3, K), z(K, 0)).shape) == (3, 0)
    assert tuple(ops_of(backend).bmm(z(0, 3, K), z(0, K, N)).shape) == (0, 3, N)


def _bad_calls(backend, rng):
    """(name, call, exception, argument the message must name)."""
    A = lambda shape, dtype="bfloat16": backend.asarray(harness.random_array(rng, shape, dtype))  # noqa: E731
    ops = ops_of(backend)
    a, b, w = A((4, 64)), A((64, 32)), A((32, 64))
    ints = backend.asarray(np.arange(256, dtype=np.int32).reshape(4, 64))
    return [
        ("1-D a", lambda: ops.matmul(A((64,)), b), ValueError, "a"),
        ("1-D b", lambda: ops.matmul(a, A((64,))), ValueError, "b"),
        ("K mismatch", lambda: ops.matmul(a, A((63, 32))), ValueError, "b"),
        ("b dtype", lambda: ops.matmul(a, A((64, 32), "float16")), TypeError, "b"),
        ("integer a", lambda: ops.matmul(ints, b), TypeError, "a"),
        ("bias shape", lambda: ops.matmul(a, b, A((33,))), ValueError, "bias"),
        ("bias dtype", lambda: ops.matmul(a, b, A((32,), "float32")), TypeError, "bias"),
        ("zero K", lambda: ops.matmul(A((4, 0)), A((0, 32))), ValueError, "a"),
        ("tf32 not a bool", lambda: ops.matmul(a, b, allow_tf32=1), TypeError, "allow_tf32"),
        ("2-D bmm", lambda: ops.bmm(a, b), ValueError, "a"),
        ("bmm batch", lambda: ops.bmm(A((2, 4, 64)), A((3, 64, 32))), ValueError, "b"),
        ("bmm K", lambda: ops.bmm(A((2, 4, 64)), A((2, 32, 64))), ValueError, "b"),
        ("1-D weight", lambda: ops.linear(a, A((64,))), ValueError, "weight"),
        ("weight K", lambda: ops.linear(a, A((32, 63))), ValueError, "weight"),
        ("weight dtype", lambda: ops.linear(a, A((32, 64), "float32")), TypeError, "weight"),
        ("integer x", lambda: ops.linear(ints, w), TypeError, "x"),
        ("scalar x", lambda: ops.linear(backend.asarray(np.float32(1.0)), w), ValueError, "x"),
        ("linear bias", lambda: ops.linear(a, w, A((64,))), ValueError, "bias"),
    ]


BAD_CASES = 18


@pytest.mark.parametrize("case", range(BAD_CASES))
def test_bad_input_names_the_argument(backend, rng, case):
    harness.assert_bad_call_names_argument(_bad_calls(backend, rng), case, BAD_CASES)


def torch_kernels_run(fn):
    """fn()'s result and the bitorch kernels it launched, with their counts."""
    from bitorch import _launch

    before = dict(_launch.launches)
    out = fn()
    return out, {k: v - before.get(k, 0) for k, v in _launch.launches.items() if v != before.get(k, 0)}


def test_torch_kernel_ran_and_custom_op_traces(rng):
    import torch

    import bitorch as ops

    inputs = arrays(rng, "float32", m=5, k=LONG_K, n=LONG_N)
    x, w, bias = (TORCH.asarray(inputs[k]) for k in ("a", "_w", "_bias"))
    _, ran = torch_kernels_run(lambda: ops.linear(x, w, bias))
    assert ran == {"matmul_kernel": 1}, ran
    small = arrays(rng, "float32", m=3, k=64, n=32)
    xs, ws, bs = (TORCH.asarray(small[k]) for k in ("a", "_w", "_bias"))
    torch.library.opcheck(torch.ops.bitorch.linear.default, (xs, ws, bs, False))
    torch.library.opcheck(torch.ops.bitorch.matmul.default, (xs, ws.t(), None, False))
    torch.library.opcheck(torch.ops.bitorch.bmm.default, (xs[None], ws.t()[None], False))
    compiled = torch.compile(lambda x, w, b: ops.linear(x, w, b), backend="aot_eager", fullgraph=True)
    assert torch.equal(compiled(xs, ws, bs), ops.linear(xs, ws, bs))


def test_torch_tma_kernel_where_operands_allow(rng, monkeypatch):
    """A TMA rung runs matmul_tma_kernel for operands with unit last strides and 16-byte rows (b either way
    round), and the pointer kernel, with the same bits, for others (a transposed, rows of 129 elements);
    the persistent one's half-width last round gives the same bits too."""
    monkeypatch.setattr(spec, "DECODE_MAX_M", 0)
    inputs = arrays(rng, "bfloat16", m=3, k=LONG_K, n=LONG_N)
    odd = arrays(rng, "bfloat16", m=3)
    for rung in spec.TMA_SWAPS:
        monkeypatch.setitem(spec.LADDERS, "bfloat16", (rung,))
        for op, data, kernel in (("linear", inputs, "matmul_tma_kernel"), ("matmul", inputs, "matmul_tma_kernel"),
                                 ("linear", odd, "matmul_kernel")):
            out, ran = torch_kernels_run(lambda: call(TORCH, op, data))
            assert ran == {kernel: 1}, (rung, op, ran)
            assert_within(out, *exact_and_bound(data, "bfloat16"), f"{op}, {rung}")
        a_t = TORCH.asarray(np.ascontiguousarray(inputs["a"].T)).t()  # a (M, K) with unit stride along M
        harness.assert_bitwise_equal(
            TORCH.numpy(ops_of(TORCH).linear(a_t, TORCH.asarray(inputs["_w"]), TORCH.asarray(inputs["_bias"]))),
            call(TORCH, "linear", inputs), f"transposed a vs TMA, {rung}")
    # Three 128x256 tiles over the interpreter's two persistent programs: the last round as half-width tiles,
    # the second half of the last tile holding real columns (712 = 2 * 256 + 200).
    wide = arrays(rng, "bfloat16", m=3, k=128, n=712)
    rung = next(rung for rung, tma in spec.TMA_SWAPS.items() if tma.persistent)
    monkeypatch.setitem(spec.LADDERS, "bfloat16", (rung,))
    persistent = call(TORCH, "linear", wide)
    pointer = next(t for t in spec.tilings("bfloat16") if not t.tma and t not in spec.TMA_SWAPS)
    monkeypatch.setitem(spec.LADDERS, "bfloat16", (pointer,))
    harness.assert_bitwise_equal(persistent, call(TORCH, "linear", wide), f"persistent TMA vs {pointer}")


def test_jax_kernel_ran_jit_and_vmap(rng):
    import jax

    import bijax

    inputs = arrays(rng, "bfloat16", m=3)
    x, w, bias = (JAX.asarray(inputs[k]) for k in ("a", "_w", "_bias"))
    x3 = JAX.asarray(harness.random_array(rng, (2, 3, K), "bfloat16"))
    jaxpr = str(jax.make_jaxpr(lambda x: bijax.linear(x, w, bias))(x))
    assert len(re.findall(r"name=bijax_matmul\b", jaxpr)) == 1

    eager = bijax.linear(x, w, bias)
    harness.assert_bitwise_equal(np.asarray(jax.jit(bijax.linear)(x, w, bias)), np.asarray(eager), "jit vs eager")
    per_slice = np.stack([np.asarray(bijax.matmul(x3[i], w.T, bias)) for i in range(2)])
    vmapped = jax.vmap(lambda xi: bijax.matmul(xi, w.T, bias))(x3)
    harness.assert_bitwise_equal(np.asarray(vmapped), per_slice, "vmap vs eager")
    harness.assert_bitwise_equal(np.asarray(jax.vmap(bijax.linear, in_axes=(0, None, None))(x3, w, bias)),
                                 per_slice, "vmap(linear) vs eager")

    # The GPU path lowers to Triton kernels (checked here without a GPU by lowering for CUDA).
    assert harness.cuda_lowering(lambda x: bijax.linear(x, w, bias), x).count("__gpu$xla.gpu.triton") == 1
    assert "__gpu$xla.gpu.triton" in harness.cuda_lowering(lambda a, b: bijax.bmm(a, b, allow_tf32=True),
                                                  x3.astype("float32"), x3.astype("float32").transpose(0, 2, 1))


def _mosaic_rungs():
    return [pytest.param(rung, id=f"{rung.block_m}x{rung.width}") for rung in spec.MOSAIC_SWAPS]


@pytest.mark.parametrize("rung", _mosaic_rungs())
def test_jax_mosaic_kernel_interpreted(rng, rung):
    """bijax's Mosaic GPU kernel through Mosaic GPU's CPU interpreter (the (K, N) layout: it has no transposed
    operand): every tile of a two-by-two grid of each of two matrices (each its own b) over three programs written
    once, with a bias, within the spec's bound. Over 3 warpgroups without a bias: there the interpreter (jax 0.10.2,
    2 cores) hangs in the bias' barrier wait with every thread blocked; test_jax_mosaic_kernel_on_hopper runs them
    with one."""
    interpret = pytest.importorskip("jax._src.pallas.mosaic_gpu.interpret.params")
    from bijax import matmul_mosaic

    t = spec.MOSAIC_SWAPS[rung]
    if t.block_m == 128 and t.warpgroups == 3:
        pytest.skip("Mosaic GPU's interpreter (jax 0.10.2) never finishes a 128-row tile over 3 warpgroups; "
                    "test_jax_mosaic_kernel_on_hopper runs it")
    k = 3 * spec.BLOCK_K["bfloat16"]
    inputs = arrays(rng, "bfloat16", m=2 * t.block_m, k=k, n=2 * t.block_n, bias=t.warpgroups < 3, batch=2)
    inputs["_w"] = harness.random_array(rng, (2, 2 * t.block_n, k), "bfloat16")
    b = JAX.asarray(np.ascontiguousarray(np.swapaxes(inputs["_w"], 1, 2)))
    out = matmul_mosaic.matmul(JAX.asarray(inputs["a"]), b, spec.Plan(t, k, spec.BLOCK_K["bfloat16"], "ieee"),
                               weight_nk=False, sms=3, bias=bias_of(JAX, inputs),
                               interpret=interpret.InterpretGPUParams())
    assert_within(JAX.numpy(out), *exact_and_bound(inputs, "bfloat16"), f"Mosaic {t}")


def test_mosaic_tiles():
    """bijax's Mosaic tiles: taken with mosaic=True (Hopper) where they fit the shape (M a
    multiple of 8, the tile dividing N, K of whole K tiles), for bf16 and fp16 alone; the Triton-lowering tile
    elsewhere."""
    for m, (k, n) in [(m, kn) for m in (128, 256, 512, 1024, 4096) for kn in spec.LLAMA3_8B.values()]:
        rung = spec.plan(m, n, k, "bfloat16").tiling
        got = spec.plan(m, n, k, "float16", pallas=True, mosaic=True).tiling
        assert got == spec.MOSAIC_SWAPS.get(rung, spec.pallas_tile(rung, m)), (m, k, n)
        assert spec.plan(m, n, k, "bfloat16", pallas=True).tiling == spec.pallas_tile(rung, m)
        assert not spec.plan(m, n, k, "float32", pallas=True, mosaic=True).tiling.mosaic
    assert all(t.mosaic and t in spec.tilings("bfloat16") for t in spec.MOSAIC_SWAPS.values())
    k, n = spec.LLAMA3_8B["down"]
    assert spec.plan(4096, n, k, "bfloat16", pallas=True, mosaic=True).tiling.mosaic
    assert spec.plan(4000, n, k, "bfloat16", pallas=True, mosaic=True).tiling.mosaic  # a partial last row tile
    assert not spec.plan(4092, n, k, "bfloat16", pallas=True, mosaic=True).tiling.mosaic  # M not a multiple of 8
    assert not spec.plan(4096, n, 1000, "bfloat16", pallas=True, mosaic=True).tiling.mosaic  # K not a multiple of 64
    assert not spec.plan(4096, 4000, k, "bfloat16", pallas=True, mosaic=True).tiling.mosaic  # N not one of the tile


@pytest.mark.skipif(not harness.ON_GPU, reason="Hopper GPU only")
@pytest.mark.parametrize("m", [256, 200])  # whole row tiles; a partial last one (TMA's edges), with a bias
@pytest.mark.parametrize("rung", _mosaic_rungs())
def test_jax_mosaic_kernel_on_hopper(rng, monkeypatch, rung, m):
    """On Hopper each Mosaic tile runs (its kernel in the jaxpr) and gives the bits of the Triton-lowering tile and
    of bitorch, for linear, matmul, bmm (two matrices), under jit and under vmap; with a bias at M=200."""
    import jax

    import bijax
    from bijax import _launch

    if not _launch.HOPPER:
        pytest.skip("not a Hopper GPU")
    monkeypatch.setattr(spec, "DECODE_MAX_M", 0)
    monkeypatch.setitem(spec.LADDERS, "bfloat16", (rung,))
    inputs = arrays(rng, "bfloat16", m=m, k=640, n=768, bias=m == 200)
    x, w = JAX.asarray(inputs["a"]), JAX.asarray(inputs["_w"])
    bias = bias_of(JAX, inputs)
    pair = {"a": np.stack([inputs["a"], inputs["a"][::-1]]), "_w": np.stack([inputs["_w"], inputs["_w"][::-1]])}
    for jaxpr in (jax.make_jaxpr(bijax.linear)(x, w, bias),
                  jax.make_jaxpr(bijax.bmm)(JAX.asarray(pair["a"]), JAX.asarray(np.swapaxes(pair["_w"], 1, 2)))):
        assert set(re.findall(r"bijax_matmul\w*", str(jaxpr))) == {"bijax_matmul_mosaic"}
    mosaic = {op: call(JAX, op, inputs) for op in ("linear", "matmul")}
    mosaic_bmm = call(JAX, "bmm", pair)
    torch_out = call(TORCH, "linear", inputs)
    x2 = JAX.asarray(np.stack([inputs["a"], inputs["a"][::-1]]))
    vmapped = np.asarray(jax.vmap(jax.jit(bijax.linear), in_axes=(0, None, None))(x2, w, bias))
    monkeypatch.setattr(spec, "MOSAIC_SWAPS", {})
    triton_out = call(JAX, "linear", inputs)
    for what, got in (*mosaic.items(), ("vmap row 0", vmapped[0]), ("vmap row 1 reversed", vmapped[1][::-1])):
        harness.assert_bitwise_equal(got, triton_out, f"Mosaic {what} vs Triton lowering")
    harness.assert_bitwise_equal(torch_out, triton_out, "bitorch vs bijax")
    assert_within(triton_out, *exact_and_bound(inputs, "bfloat16"), "vs float64")
    harness.assert_bitwise_equal(mosaic_bmm, call(JAX, "bmm", pair), "Mosaic bmm vs Triton lowering")
    harness.assert_bitwise_equal(mosaic_bmm, call(TORCH, "bmm", pair), "Mosaic bmm vs bitorch")


def test_spec_reduction_order_ignores_m():
    """BLOCK_K (so the K order) comes from the dtype alone, whichever tile M gets."""
    for dtype in DTYPES:
        for n, k in [(1, 1), (100, 129), (72, 1000), (4096, 14336), (6144, 4096), (28672, 4096)]:
            plans = [spec.plan(m, n, k, dtype, pallas=pallas) for m in (1, 2, 3, 7, 64, 199, 1024, 4096, 65536)
                     for pallas in (False, True)]
            assert {(p.block_k, p.k_tiles, p.even_k, p.precision) for p in plans} == {
                (spec.BLOCK_K[dtype], common.cdiv(k, spec.BLOCK_K[dtype]), k % spec.BLOCK_K[dtype] == 0, "ieee")}
    assert spec.plan(4096, 28672, 4096, "bfloat16").tiling == spec.LADDERS["bfloat16"][0]
    assert spec.plan(1, 28672, 4096, "bfloat16").tiling == spec.DECODE_TILES["bfloat16"][0]  # 224 column tiles
    assert spec.plan(32, 4096, 14336, "bfloat16").tiling == spec.DECODE_TILES["bfloat16"][-1]  # 32 of the wide one
    assert [spec.tile_of(pid, 3, 2, 2) for pid in range(6)] == [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1)]


def test_pallas_tiles():
    """bijax swaps bitorch's narrow decode tile and a few rungs for its own, and takes a 1-warp narrow tile
    where the decode tile is one row tile; every one of them is among the tiles test_tilings_agree runs."""
    narrow = spec.DECODE_TILES["bfloat16"][-1]
    down, o = spec.LLAMA3_8B["down"], spec.LLAMA3_8B["o"]
    assert spec.plan(8, down[1], down[0], "bfloat16", pallas=True).tiling == spec.PALLAS_ONE_ROW_SWAPS[narrow]
    assert spec.plan(1, o[1], o[0], "float16", pallas=True).tiling == spec.PALLAS_ONE_ROW_SWAPS[narrow]
    assert spec.plan(32, down[1], down[0], "bfloat16", pallas=True).tiling == spec.PALLAS_SWAPS[narrow]
    assert spec.plan(1, o[1], o[0], "bfloat16").tiling == narrow
    assert spec.plan(1, o[1], o[0], "float32", pallas=True).tiling == spec.DECODE_TILES["float32"][-1]
    for m, (k, n) in [(m, kn) for m in (1, 8, 32, 128, 256, 4096) for kn in spec.LLAMA3_8B.values()]:
        assert spec.plan(m, n, k, "bfloat16", pallas=True).tiling in spec.tilings("bfloat16")
        assert not spec.plan(m, n, k, "bfloat16", pallas=True, tma=True).tiling.tma
        assert spec.plan(m, n, k, "bfloat16", tma=True).tiling in spec.tilings("bfloat16")


def test_tma_tiles():
    """bitorch's TMA swaps: the persistent 128x256 tile for large M, 64x128 where the plan takes 128x64; none
    for fp32 or without tma. A persistent tile has one column block (its last round halves it)."""
    assert not any(t.persistent and t.block_n2 for t in spec.TMA_SWAPS.values())
    down, gate_up = spec.LLAMA3_8B["down"], spec.LLAMA3_8B["gate_up"]
    large = spec.plan(4096, gate_up[1], gate_up[0], "bfloat16", tma=True).tiling
    assert large == spec.TMA_SWAPS[spec.LADDERS["bfloat16"][0]] and large.persistent
    swapped = spec.plan(256, down[1], down[0], "float16", tma=True).tiling
    assert swapped.tma and (swapped.block_m, swapped.block_n) == (64, 128)
    assert spec.plan(256, down[1], down[0], "float16").tiling == spec.LADDERS["float16"][5]
    assert not any(spec.plan(m, n, k, "float32", tma=True).tiling.tma for m in (1, 256, 4096)
                   for k, n in spec.LLAMA3_8B.values())
