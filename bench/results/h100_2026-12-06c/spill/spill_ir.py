"""Offline: bijax rms_norm's Triton IR with and without the global warp-sum path, compiled by the local Triton for
sm_90: shared memory and registers."""
import os, re, sys
import bench.kernel_code as kc
import jax.numpy as jnp, numpy as np
import triton
from bispec import rms_norm as spec
import bijax
rows = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
H = 8192
args = [jnp.asarray(np.random.randn(*s).astype(np.float32), jnp.bfloat16) for s in ((rows, H), (rows, H), (H,))]
for tag, thr in (("smem", 1 << 30), ("global", 0)):
    spec.PALLAS_WARP_SUMS_VIA_GLOBAL_FROM_ROWS = thr
    ir = kc.pallas_ir(lambda x, r, w: bijax.rms_norm(x, w, residual=r), *args)
    path = f"/tmp/rms_{tag}.ttir"
    open(path, "w").write(ir)
    k = triton.compile(path, target=kc.TARGET, options={"num_warps": spec.num_warps(H)})
    sass, regs = kc.sass(k.asm["cubin"], f"/tmp/{tag}.cubin")
    open(f"/tmp/rms_{tag}.sass", "w").write(sass)
    print(tag, "shared", k.metadata.shared, regs, "BAR", sass.count("BAR"), "STS", sass.count("STS"), "LDS", sass.count("LDS"), "LDG", sass.count("LDG"), "STG", sass.count("STG"))
args = [jnp.asarray(np.random.randn(*s).astype(np.float32), jnp.bfloat16) for s in ((rows, H), (H,), (H,))]
for tag, thr in (("smem", 1 << 30), ("global", 0)):
    spec.PALLAS_WARP_SUMS_VIA_GLOBAL_FROM_ROWS = thr
    ir = kc.pallas_ir(lambda x, w, b: bijax.layer_norm(x, w, b), *args)
    path = f"/tmp/ln_{tag}.ttir"
    open(path, "w").write(ir)
    k = triton.compile(path, target=kc.TARGET, options={"num_warps": spec.num_warps(H)})
    sass, regs = kc.sass(k.asm["cubin"], f"/tmp/{tag}.cubin")
    open(f"/tmp/ln_{tag}.sass", "w").write(sass)
    print("ln", tag, "shared", k.metadata.shared, regs, "BAR", sass.count("BAR"), "STS", sass.count("STS"), "LDS", sass.count("LDS"), "LDG", sass.count("LDG"), "STG", sass.count("STG"))
