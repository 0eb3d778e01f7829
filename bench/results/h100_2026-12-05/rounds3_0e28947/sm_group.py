"""Probe: FUSED_GROUP for the one-launch softmax / log_softmax on this GPU, 4096 x 128256 bf16 (same bits)."""
import torch
import bitorch
from bispec import softmax as spec
from bench import timing

bw = timing.copy_bandwidth_gbs()
rows, n = 4096, spec.FIGURE_VOCAB
limit_ms = spec.bytes_moved(rows, n, 2, 2) / bw / 1e6
xs = [torch.randn(rows, n, device="cuda", dtype=torch.bfloat16) * 4 for _ in range(3)]
ref = {}
for g in (3, 2, 4, 3):
    spec.FUSED_GROUP = g
    for name, fn in (("softmax", bitorch.softmax), ("log_softmax", bitorch.log_softmax)):
        ms = timing.device_ms([lambda x=x: fn(x, -1) for x in xs], timing.torch_sync, reps=60)
        out = fn(xs[0], -1)
        same = torch.equal(out, ref.setdefault(name, out))
        print(f"group {g} {name}: {ms*1e3:.1f} us, {100*limit_ms/ms:.1f} % of copy bw ({bw:.0f} GB/s), bits same {same}", flush=True)
