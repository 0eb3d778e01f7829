"""The GPU code of the norms and the mean, without a GPU: to check that a change leaves the kernels as they were timed.

  python -m bench.kernel_code OUT_DIR [--rows 8,256,4096]      then: diff -r OUT_BEFORE OUT_AFTER

For each op (rms_norm with residual, layer_norm with weight and bias, the mean over the last dim; hidden 8192, bf16)
and row count:
bitorch's Triton kernel as its launcher compiles it for an H100 (sm_90, pointers 16-byte aligned as bitorch
hands them), written as SASS (instructions only: no addresses or encodings), and bijax's Pallas kernel as the
Triton IR it lowers to for CUDA (XLA compiles that IR with its own Triton, so the IR is what our tree decides).
summary.txt lists bitorch's registers per thread and both kernels' shared memory (bijax's IR compiled by this
Triton). Runs in a process of its own: bitorch must be imported for the GPU (no TRITON_INTERPRET), which this
module arranges before it imports it.
"""
import contextlib
import functools
import io
import os
import re
import subprocess

import torch

os.environ.pop("TRITON_INTERPRET", None)  # as a caller without a GPU may have set it
torch.cuda.is_available = lambda: True  # bitorch then builds its GPU kernels; nothing here runs them

import jax.numpy as jnp  # noqa: E402
import triton  # noqa: E402
from absl import app, flags  # noqa: E402
from jax.experimental import pallas as pl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

import bijax  # noqa: E402
import bitorch  # noqa: E402
from bijax import _launch as jax_launch  # noqa: E402

flags.DEFINE_list("rows", ["8", "256", "4096"], "row counts (each picks its own plan: split, loads)")

HIDDEN = 8192
TARGET = GPUTarget("cuda", 90, 32)
TOOLS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
TRITON_TYPES = {torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.float32: "*fp32", torch.int32: "*i32"}
# name -> (bitorch call, bijax call) on (x, residual, weight, bias)
OPS = {"rms_norm": (lambda x, r, w, b: bitorch.rms_norm(x, w, residual=r),
                    lambda x, r, w, b: bijax.rms_norm(x, w, residual=r)),
       "layer_norm": (lambda x, r, w, b: bitorch.layer_norm(x, w, b), lambda x, r, w, b: bijax.layer_norm(x, w, b)),
       "mean": (lambda x, r, w, b: bitorch.mean(x, -1), lambda x, r, w, b: bijax.mean(x, -1))}


def compile_launch(compiled: dict, kernel, grid, *args, **meta):
    """Stands in for bitorch._launch.launch: compiles the kernel as the launch would, into `compiled`."""
    meta.setdefault("num_warps", meta.get("WARPS", 4))
    signature, constants, attrs = {}, {}, {}
    for i, (param, arg) in enumerate(zip(kernel.params, [*args, *[None] * len(kernel.params)])):
        if param.is_constexpr or (arg is None and i < len(args)):  # Triton makes a None argument a constant
            signature[param.name], constants[param.name] = "constexpr", meta[param.name] if param.is_constexpr else None
        elif isinstance(arg, torch.Tensor):
            signature[param.name] = TRITON_TYPES[arg.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            signature[param.name] = "fp32" if isinstance(arg, float) else "i32"
    source = ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs)
    compiled[kernel.fn.__name__] = triton.compile(source, target=TARGET, options={"num_warps": meta["num_warps"]})


def sass(cubin: bytes, path: str) -> tuple[str, str]:
    """(instructions, register line) of a cubin, through the cuobjdump Triton ships."""
    with open(path, "wb") as f:
        f.write(cubin)
    dump = subprocess.run([f"{TOOLS}/cuobjdump", "-sass", path], capture_output=True, text=True, check=True).stdout
    usage = subprocess.run([f"{TOOLS}/cuobjdump", "-res-usage", path], capture_output=True, text=True,
                           check=True).stdout
    os.remove(path)
    code = "\n".join(m.group(1).strip() for m in re.finditer(r"/\*[0-9a-f]{4,}\*/\s+([^;]*;)", dump))
    return code + "\n", re.search(r"REG:\d+", usage).group(0)


def pallas_ir(fn, *args) -> str:
    """The Triton IR of the Pallas kernel fn(*args) lowers to for CUDA (pallas_call's debug printout, its
    locations dropped)."""
    printout = io.StringIO()
    plain = pl.pallas_call
    pl.pallas_call = functools.partial(plain, debug=True)
    try:
        with contextlib.redirect_stdout(printout):
            jax_launch.cuda_lowering(fn, *args)
    finally:
        pl.pallas_call = plain
    text = printout.getvalue()
    module = re.sub(r' \[unknown\]| "[^"\n]*"\(#loc\d*\)| \(#loc\d*\)', "", text[text.index("module @"):])
    return module[:module.index("\n}\n") + 3]  # what follows is the location table


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("usage: python -m bench.kernel_code OUT_DIR [--rows 8,256,4096]")
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    compiled: dict = {}
    bitorch._launch.launch = functools.partial(compile_launch, compiled)
    bitorch._launch.DEVICE = "cpu"  # the calls only build kernels: host tensors stand in for the GPU's
    summary = []
    for rows in map(int, flags.FLAGS.rows):
        x, r, w, b = (torch.zeros(shape, dtype=torch.bfloat16) for shape in ((rows, HIDDEN),) * 2 + ((HIDDEN,),) * 2)
        jargs = [jnp.asarray(t.float().numpy(), jnp.bfloat16) for t in (x, r, w, b)]
        for name, (torch_call, jax_call) in OPS.items():
            compiled.clear()
            torch_call(x, r, w, b)
            (kernel_name, kernel), = compiled.items()
            code, regs = sass(kernel.asm["cubin"], os.path.join(out, "kernel.cubin"))
            with open(os.path.join(out, f"bitorch_{name}_{rows}.sass"), "w") as f:
                f.write(code)
            ttir = os.path.join(out, f"bijax_{name}_{rows}.ttir")
            with open(ttir, "w") as f:
                f.write(pallas_ir(jax_call, *jargs))
            # XLA compiles the IR with a Triton of its own; any shared memory there gets bijax a small L1 (README)
            shared = triton.compile(ttir, target=TARGET, options={"num_warps": kernel.metadata.num_warps}).metadata.shared
            summary.append(f"bitorch {kernel_name} rows={rows}: {regs}, {code.count(chr(10))} instructions, "
                           f"SHARED:{kernel.metadata.shared}; bijax {name} (this Triton): SHARED:{shared}")
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write("\n".join(summary) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    app.run(main)
