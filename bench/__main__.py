"""python -m bench <op> [--flags]: time an op over the token sweep.

`python -m bench plot FILE.json` redraws a plot; `python -m bench md FILE.json` prints its table as Markdown.

Each op's module in bench/ exposes LINES, SIZE (GPU default), CPU_SIZE, title(dtype, size)
and run(tokens, size, dtype, reps) -> (meta, rows).
"""
import importlib
import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from absl import app, flags  # noqa: E402

from bench import report  # noqa: E402
from bispec import common  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("tokens", None, "token counts (default: the figure's sweep on GPU, 1,8 on CPU)")
flags.DEFINE_integer("size", None, "reduced length: hidden or vocab size (default: the op's own)")
flags.DEFINE_string("dtype", "bfloat16", "input dtype")
flags.DEFINE_integer("reps", None, "timed calls per line and size (default: bench.timing.REPS)")
flags.DEFINE_integer("rounds", 1, "rounds of all lines in turn (each line keeps its median round)")
flags.DEFINE_integer("seed", 0, "seeds the order of the lines in each round")
flags.DEFINE_bool("isolated", False, "time every call alone, then a sync, in both frameworks (bench.timing.ISOLATED)")
flags.DEFINE_string("out", "bench_results", "output folder for CSV, JSON and PNG")

OPS = {"rmsnorm": "bench.rmsnorm", "layer_norm": "bench.layer_norm", "softmax": "bench.softmax",
       "log_softmax": "bench.log_softmax", "mean": "bench.mean", "matmul": "bench.matmul"}


def main(argv):
    if len(argv) < 2 or argv[1] not in (*OPS, "plot", "md"):
        raise app.UsageError(f"usage: python -m bench {{{'|'.join(OPS)}|plot FILE.json|md FILE.json}} [--flags]")
    if argv[1] == "plot":
        report.plot(argv[2])
        return
    if argv[1] == "md":
        print(report.markdown(argv[2]))
        return
    from bench import sweep, timing

    op = importlib.import_module(OPS[argv[1]])
    gpu = timing.ON_GPU
    tokens = [int(t) for t in FLAGS.tokens] if FLAGS.tokens else (common.TOKEN_SWEEP if gpu else (1, 8))
    size = FLAGS.size or (op.SIZE if gpu else op.CPU_SIZE)
    if not gpu:
        print("No GPU: a small smoke sweep through the interpreters. These are NOT GPU times.")
    sweep.ROUNDS, sweep.SEED, timing.ISOLATED = FLAGS.rounds, FLAGS.seed, FLAGS.isolated
    reps = FLAGS.reps or timing.REPS
    meta, rows = op.run(tokens, size, FLAGS.dtype, reps)
    meta.update(report.provenance(), reps=reps, cadence="isolated" if FLAGS.isolated else "back to back")
    meta.setdefault("rounds", FLAGS.rounds)  # an op that times more rounds than asked says so itself
    report.write(argv[1], op.title(FLAGS.dtype, size), op.LINES, rows, FLAGS.out, meta)


if __name__ == "__main__":
    app.run(main)
