"""python -m bench <op> [--flags]: time an op over the token sweep; `python -m bench plot FILE.json` redraws."""
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from absl import app, flags  # noqa: E402

from bench import report  # noqa: E402
from bispec import common  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("tokens", None, "token counts (default: the figure's sweep on GPU, 1,8 on CPU)")
flags.DEFINE_integer("hidden", None, "hidden size (default: 8192 on GPU, 256 on CPU)")
flags.DEFINE_string("dtype", "bfloat16", "input dtype")
flags.DEFINE_integer("reps", 50, "timed calls per line and size")
flags.DEFINE_string("out", "bench_results", "output folder for CSV, JSON and PNG")

OPS = ("rmsnorm",)


def main(argv):
    if len(argv) < 2 or argv[1] not in (*OPS, "plot"):
        raise app.UsageError(f"usage: python -m bench {{{','.join(OPS)}|plot FILE.json}} [--flags]")
    if argv[1] == "plot":
        report.plot(argv[2])
        return
    from bench import rmsnorm, timing

    gpu = timing.ON_GPU
    tokens = [int(t) for t in FLAGS.tokens] if FLAGS.tokens else (common.TOKEN_SWEEP if gpu else (1, 8))
    hidden = FLAGS.hidden or (8192 if gpu else 256)
    if not gpu:
        print("No GPU: a small smoke sweep through the interpreters. These are NOT GPU times.")
    meta, rows = rmsnorm.run(tokens, hidden, FLAGS.dtype, FLAGS.reps)
    meta.update(report.provenance())
    title = f"Fused residual-add + RMSNorm, {FLAGS.dtype}, hidden {hidden}"
    report.write("rmsnorm", title, rmsnorm.LINES, rows, FLAGS.out, meta)


if __name__ == "__main__":
    app.run(main)
