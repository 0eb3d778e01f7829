"""Time candidate spec constants on the GPU: python -m bench.tune rmsnorm|softmax|matmul.

Each candidate is applied by setting the spec's constants (both frameworks read
them at call time), then timed like the bench (CUDA graph / one jit, CUPTI).
The winner is written into bispec by hand. Constants that fix a reduction order
(softmax's CHUNK, matmul's BLOCK_K) may be tuned only before they are fixed.
"""
import dataclasses
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from absl import app, flags  # noqa: E402

import bijax  # noqa: E402
import bitorch  # noqa: E402
from bench import timing  # noqa: E402
from bispec import matmul as matmul_spec  # noqa: E402
from bispec import rms_norm as rms_spec  # noqa: E402
from bispec import softmax as softmax_spec  # noqa: E402

flags.DEFINE_list("tokens", ["1", "32", "256", "4096"], "token counts")


def _sets(make, nbytes):
    sets = [make() for _ in range(timing.input_sets_for(nbytes))]
    return sets, [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]


def _both(torch_fn, jax_fn, sets, jsets) -> str:
    t = timing.device_ms([lambda s=s: torch_fn(*s) for s in sets], timing.torch_sync)
    j = timing.runner_ms(timing.jax_runner(jax_fn, jsets), len(jsets), timing.jax_sync)
    return f"bitorch {t * 1e3:8.2f} us  bijax {j * 1e3:8.2f} us"


def tune_rmsnorm(tokens, hidden=8192):
    for warps in (4, 8, 16, 32):
        rms_spec.num_warps = lambda h, warps=warps: warps
        jax.clear_caches()
        for m in tokens:
            sets, jsets = _sets(lambda: (*(torch.randn(m, hidden, dtype=torch.bfloat16, device="cuda") for _ in range(2)),
                                         torch.randn(hidden, dtype=torch.bfloat16, device="cuda")), 4 * m * hidden * 2)
            print(f"tune rmsnorm tokens={m:5d} num_warps={warps:2d}: " + _both(
                lambda x, r, w: bitorch.rms_norm(x, w, residual=r), jax.jit(lambda x, r, w: bijax.rms_norm(x, w, residual=r)),
                sets, jsets))


def tune_softmax(tokens, vocab=128256):
    for chunk, warps in ((2048, 2), (4096, 4), (8192, 8), (16384, 16), (4096, 8), (8192, 4)):
        softmax_spec.CHUNK, softmax_spec.CHUNK_WARPS = chunk, warps
        jax.clear_caches()  # jit caches key on the function, not on the spec's constants
        for m in tokens:
            sets, jsets = _sets(lambda: (3 * torch.randn(m, vocab, device="cuda").to(torch.bfloat16),), 4 * m * vocab)
            print(f"tune softmax tokens={m:5d} chunk={chunk:5d} warps={warps:2d}: "
                  + _both(bitorch.softmax, jax.jit(bijax.softmax), sets, jsets))


MATMUL_CANDIDATES = {  # name -> (default tiling, wide tiling, WIDE_MIN_N, MAX_SPLITS)
    "current": (matmul_spec.TILINGS["bfloat16"], matmul_spec.WIDE_TILINGS["bfloat16"], 16384, 16),
    "s3": (matmul_spec.Tiling(128, 128, 64, 8, 8, 3), matmul_spec.WIDE_TILINGS["bfloat16"], 16384, 16),
    "s5": (matmul_spec.Tiling(128, 128, 64, 8, 8, 5), matmul_spec.WIDE_TILINGS["bfloat16"], 16384, 16),
    "nosplit": (matmul_spec.TILINGS["bfloat16"], matmul_spec.WIDE_TILINGS["bfloat16"], 16384, 1),
    "wide_nosplit": (matmul_spec.TILINGS["bfloat16"], matmul_spec.WIDE_TILINGS["bfloat16"], 0, 1),
    "wide_s4": (matmul_spec.TILINGS["bfloat16"], matmul_spec.Tiling(128, 256, 64, 8, 8, 4), 0, 1),
    "k128_s3": (matmul_spec.Tiling(128, 128, 128, 8, 8, 3), matmul_spec.Tiling(128, 256, 128, 8, 8, 2), 16384, 16),
    "m64_n256": (matmul_spec.Tiling(64, 256, 64, 8, 4, 4), matmul_spec.Tiling(64, 256, 64, 8, 4, 4), 16384, 16),
}


def tune_matmul(tokens):
    cublas_ms = {}
    for cand, (tiling, wide, wide_min_n, max_splits) in MATMUL_CANDIDATES.items():
        matmul_spec.TILINGS["bfloat16"], matmul_spec.WIDE_TILINGS["bfloat16"] = tiling, wide
        matmul_spec.WIDE_MIN_N, matmul_spec.MAX_SPLITS = wide_min_n, max_splits
        jax.clear_caches()
        for name, (k, n) in matmul_spec.LLAMA3_8B.items():
            for m in tokens:
                sets = [(torch.randn(m, k, dtype=torch.bfloat16, device="cuda"),
                         torch.randn(n, k, dtype=torch.bfloat16, device="cuda"))
                        for _ in range(timing.input_sets_for(2 * (m * k + n * k)))]
                try:
                    ours = timing.device_ms([lambda s=s: bitorch.linear(*s) for s in sets], timing.torch_sync)
                except Exception as e:  # noqa: BLE001  (a config that does not compile is reported)
                    print(f"tune matmul {cand:12} {name:7} M={m:5d}: FAILED {type(e).__name__}: {str(e)[:200]}")
                    continue
                if (name, m) not in cublas_ms:
                    cublas_ms[name, m] = timing.device_ms([lambda s=s: F.linear(*s) for s in sets], timing.torch_sync)
                cublas = cublas_ms[name, m]
                tflops = 2 * m * n * k / ours / 1e9
                print(f"tune matmul {cand:12} {name:7} M={m:5d}: bitorch {ours * 1e3:8.1f} us {tflops:6.0f} TFLOP/s"
                      f"  cublas {cublas * 1e3:8.1f} us  cublas/bitorch {cublas / ours:5.2f}")
                del sets


TILES = [matmul_spec.Tiling(*t) for t in ((128, 256, 64, 8, 8, 3), (128, 128, 64, 8, 8, 4), (64, 128, 64, 8, 4, 4),
                                            (64, 64, 64, 8, 4, 4), (64, 32, 64, 8, 4, 4), (16, 64, 64, 8, 4, 4),
                                            (16, 32, 64, 8, 4, 4), (64, 256, 64, 8, 4, 3))]


def _with_tiling(tiling, dtype="bfloat16"):
    """Every (N, K) gets `tiling`, unsplit: one accumulator over the K tiles in order."""
    matmul_spec.TILINGS[dtype] = tiling
    matmul_spec.WIDE_MIN_N, matmul_spec.MAX_SPLITS = 1 << 30, 1
    jax.clear_caches()


def tune_matmul_tiles(tokens):
    """Do unsplit tilings that share BLOCK_K give the same bits (per framework and across)? Then time them."""
    shapes = dict(qkv=matmul_spec.LLAMA3_8B["qkv"], down=matmul_spec.LLAMA3_8B["down"], odd=(1000, 300))
    for dtype, name in [("bfloat16", name) for name in shapes] + [("float16", "odd")]:
        tdtype = getattr(torch, dtype)
        k, n = shapes[name]
        x = torch.randn(199, k, dtype=tdtype, device="cuda")
        w = torch.randn(n, k, dtype=tdtype, device="cuda") * k ** -0.5
        first = None
        for tiling in TILES:
            _with_tiling(tiling, dtype)
            try:
                outs = [bitorch.linear(x, w), bitorch.linear(x[:1], w),
                        torch.from_dlpack(bijax.linear(*(jax.dlpack.from_dlpack(t) for t in (x, w))))]
            except Exception as e:  # noqa: BLE001
                print(f"tune tiles {dtype} {name} {tiling}: FAILED {type(e).__name__}: {str(e)[:150]}")
                continue
            first = first if first is not None else outs[0]
            print(f"tune tiles {dtype} {name:7} {tuple(dataclasses.astuple(tiling))}: torch==first "
                  f"{torch.equal(outs[0], first)}  row0 alone==first {torch.equal(outs[1], first[:1])}  "
                  f"jax==first {torch.equal(outs[2], first)}")
    for name, (k, n) in matmul_spec.LLAMA3_8B.items():
        for m in tokens:
            sets = [(torch.randn(m, k, dtype=torch.bfloat16, device="cuda"),
                     torch.randn(n, k, dtype=torch.bfloat16, device="cuda")) for _ in range(2)]
            cublas = timing.device_ms([lambda s=s: F.linear(*s) for s in sets], timing.torch_sync)
            for tiling in TILES:
                _with_tiling(tiling)
                try:
                    ours = timing.device_ms([lambda s=s: bitorch.linear(*s) for s in sets], timing.torch_sync)
                    line = f"bitorch {ours * 1e3:8.2f} us  cublas/bitorch {cublas / ours:5.2f}"
                except Exception as e:  # noqa: BLE001
                    line = f"FAILED {type(e).__name__}"
                print(f"tune tiles time {name:7} M={m:5d} {tuple(dataclasses.astuple(tiling))}: {line}  "
                      f"cublas {cublas * 1e3:8.2f} us")


def main(argv):
    tokens = [int(t) for t in flags.FLAGS.tokens]
    {"rmsnorm": tune_rmsnorm, "softmax": tune_softmax, "matmul": tune_matmul, "matmul_tiles": tune_matmul_tiles}[argv[1]](tokens)


if __name__ == "__main__":
    app.run(main)
