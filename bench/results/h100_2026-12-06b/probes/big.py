"""Probe: inputs past 2**31 elements, each framework: the last row of the whole batch against that row alone. Not committed."""
import os, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, jax.numpy as jnp, torch
import bijax, bitorch

cases = {"rms_norm": (262145, 8192), "mean": (262145, 8192), "softmax": (16385, 131072), "log_softmax": (16385, 131072),
         "layer_norm": (262145, 8192)}
for name, (m, n) in cases.items():
    try:
        x = torch.randn(m, n, dtype=torch.bfloat16, device="cuda")
        w = torch.randn(n, dtype=torch.bfloat16, device="cuda")
        tcall = {"rms_norm": lambda a: bitorch.rms_norm(a, w), "layer_norm": lambda a: bitorch.layer_norm(a, w, w),
                 "mean": lambda a: bitorch.mean(a, -1)}.get(name, getattr(bitorch, name))
        wj = jax.dlpack.from_dlpack(w)
        jcall = {"rms_norm": lambda a: bijax.rms_norm(a, wj), "layer_norm": lambda a: bijax.layer_norm(a, wj, wj),
                 "mean": lambda a: bijax.mean(a, -1)}.get(name, getattr(bijax, name))
        for fw, call, conv in (("bitorch", tcall, lambda t: t), ("bijax", jcall, jax.dlpack.from_dlpack)):
            try:
                full = call(conv(x))
                last = torch.from_dlpack(full[-1:]) if fw == "bijax" else full[-1:]
                alone = call(conv(x[-1:].clone()))
                alone = torch.from_dlpack(alone) if fw == "bijax" else alone
                first = torch.from_dlpack(full[:1]) if fw == "bijax" else full[:1]
                first_alone = call(conv(x[:1].clone()))
                first_alone = torch.from_dlpack(first_alone) if fw == "bijax" else first_alone
                print(f"big {name:11s} {m}x{n} ({m*n} elements) {fw}: last row equal alone: {torch.equal(last, alone)}, "
                      f"first: {torch.equal(first, first_alone)}", flush=True)
                del full, last
            except Exception as e:
                print(f"big {name:11s} {fw}: {type(e).__name__}: {str(e)[:200]}", flush=True)
            torch.cuda.empty_cache()
        del x
        torch.cuda.empty_cache()
    except Exception as e:
        print(f"big {name}: {type(e).__name__}: {str(e)[:200]}", flush=True)
