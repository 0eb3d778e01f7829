"""Pick the spec's num_warps for rms_norm: time both kernels at each candidate (GPU only).

python -m bench.tune --hidden 8192. The winner is written into bispec by hand: the
config depends on hidden alone, so it is the same at every token count.
"""
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import torch  # noqa: E402
from absl import app, flags  # noqa: E402

import bijax  # noqa: E402
import bitorch  # noqa: E402
from bench import timing  # noqa: E402
from bispec import rms_norm as spec  # noqa: E402

flags.DEFINE_integer("hidden", 8192, "hidden size")
flags.DEFINE_list("warps", ["4", "8", "16", "32"], "num_warps candidates")
flags.DEFINE_list("tokens", ["1", "256", "4096"], "token counts")
flags.DEFINE_list("eviction", ["evict_first", ""], "cache hints for the streamed rows ('' = none)")


def main(_):
    hidden = flags.FLAGS.hidden
    for tokens in map(int, flags.FLAGS.tokens):
        sets = [(*(torch.randn(tokens, hidden, dtype=torch.bfloat16, device="cuda") for _ in range(2)),
                 torch.randn(hidden, dtype=torch.bfloat16, device="cuda"))
                for _ in range(timing.input_sets_for(4 * tokens * hidden * 2))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
        for warps, eviction in [(w, e) for w in map(int, flags.FLAGS.warps) for e in flags.FLAGS.eviction]:
            spec.num_warps = lambda h, warps=warps: warps  # read by both frameworks at call time
            spec.STREAM_EVICTION = eviction
            pallas = jax.jit(lambda x, r, w: bijax.rms_norm(x, w, residual=r))
            t = timing.device_ms([lambda s=s: bitorch.rms_norm(s[0], s[2], residual=s[1]) for s in sets],
                                 timing.torch_sync)
            j = timing.runner_ms(timing.jax_runner(pallas, jsets), len(jsets), timing.jax_sync)
            print(f"tune rms_norm hidden={hidden} tokens={tokens:5d} num_warps={warps:2d} {eviction or 'no hint':11}: "
                  f"bitorch {t * 1e3:8.2f} us  bijax {j * 1e3:8.2f} us")


if __name__ == "__main__":
    app.run(main)
