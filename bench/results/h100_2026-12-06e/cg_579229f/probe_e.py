"""H100 probe (2026-12-06, late), not committed as a tool:
A. launch facts (CUPTI: registers, grid, block, shared) of mean at 4096 and layer_norm at 8 for every line,
   and inductor's generated mean kernel (config, registers).
B. bitorch mean (2048, 4096): L1/shared preference of reduce_rows_kernel; bijax and torch.compile beside.
C. bitorch layer_norm at 1, 8, 16 tokens with 1..16 programs a row (no bit changes); XLA and bijax beside."""
import ctypes, json, os, statistics, sys, tempfile
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
import bijax, bitorch
from bench import timing, layer_norm as bln, mean as bmean
from bispec import layer_norm as ln_spec
from bitorch import reduce as treduce

H = 8192
bf = torch.bfloat16
cuda = ctypes.CDLL("libcuda.so.1")
part = sys.argv[1] if len(sys.argv) > 1 else "ABC"


def facts(calls):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for c in calls:
            c()
        torch.cuda.synchronize()
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    for ev in json.load(open(path))["traceEvents"]:
        if ev.get("cat") == "kernel":
            a = ev.get("args", {})
            print(f"    {ev['name'][:50]:50s} dur {ev.get('dur')} "
                  + str({k: a.get(k) for k in ("registers per thread", "shared memory", "grid", "block", "blocks per SM")}),
                  flush=True)


def rounds(lines, rounds=3):
    res = {k: [] for k in lines}
    for _ in range(rounds):
        for name, fn in lines.items():
            res[name].append(fn())
    return "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in res.items()) + " us"


def tms(fn, sets):
    return lambda: timing.device_ms([lambda s=s: fn(*s) for s in sets], timing.torch_sync)


def jms(fn, jsets):
    return lambda: timing.runner_ms(timing.jax_runner(fn, jsets), len(jsets), timing.jax_sync)


mean_lines = {"bitorch": lambda x: bitorch.mean(x, -1), "compile": torch.compile(bmean.eager)}
mean_jax = {"bijax": jax.jit(lambda x: bijax.mean(x, -1)), "xla": jax.jit(lambda x: jax.numpy.mean(x, axis=-1))}
if "A" in part:
    from torch._inductor.utils import run_and_get_code
    for m in (256, 4096):
        x = torch.randn(m, H, dtype=bf, device="cuda")
        _, codes = run_and_get_code(torch.compile(lambda x: x.mean(-1), dynamic=False), x)
        code = codes[0]
        start = code.find("@triton_heuristics")
        print(f"A inductor mean tokens={m} code:\n" + code[max(0, start - 200):code.find("def call(")], flush=True)
        jx = jax.dlpack.from_dlpack(x)
        print(f"A facts mean tokens={m}", flush=True)
        facts([lambda: mean_lines["bitorch"](x), lambda: mean_lines["compile"](x),
               lambda: jax.block_until_ready(mean_jax["bijax"](jx)), lambda: jax.block_until_ready(mean_jax["xla"](jx))])
    m = 8
    x, w, b = torch.randn(m, H, dtype=bf, device="cuda"), *(torch.randn(H, dtype=bf, device="cuda") for _ in range(2))
    j = [jax.dlpack.from_dlpack(t) for t in (x, w, b)]
    print(f"A facts layer_norm tokens={m}", flush=True)
    facts([lambda: bitorch.layer_norm(x, w, b), lambda: jax.block_until_ready(jax.jit(bln.jnp_style)(*j)),
           lambda: jax.block_until_ready(jax.jit(bijax.layer_norm)(*j))])

if "B" in part:
    def set_mode(mode):
        for caches in treduce.reduce_rows_kernel.device_caches.values():
            for k in caches[0].values():
                k._init_handles()
                f = ctypes.c_void_p(k.function)
                r = (cuda.cuFuncSetCacheConfig(f, 0) or cuda.cuFuncSetAttribute(f, 9, -1)) if mode is None else \
                    cuda.cuFuncSetCacheConfig(f, mode[1]) if mode[0] == "cache" else cuda.cuFuncSetAttribute(f, 9, mode[1])
                assert r == 0, r

    for m in (256, 2048, 4096):
        sets = [(torch.randn(m, H, dtype=bf, device="cuda"),) for _ in range(timing.input_sets_for(m * H * 2))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
        bitorch.mean(sets[0][0], -1)
        torch.cuda.synchronize()

        def moded(mode):
            def run():
                set_mode(mode)
                out = tms(mean_lines["bitorch"], sets)()
                set_mode(None)
                return out
            return run
        lines = {"bitorch": moded(None), "bitorch_prefer_shared": moded(("cache", 1)),
                 "bitorch_prefer_l1": moded(("cache", 2)), "bitorch_carve100": moded(("carve", 100)),
                 "compile": tms(mean_lines["compile"], sets), "bijax": jms(mean_jax["bijax"], jsets)}
        print(f"B mean tokens={m:5d}: {rounds(lines)}", flush=True)

if "C" in part:
    shipped = ln_spec.triton_split
    for m in (1, 8, 16):
        sets = [(torch.randn(m, H, dtype=bf, device="cuda"), *(torch.randn(H, dtype=bf, device="cuda") for _ in range(2)))
                for _ in range(timing.input_sets_for(4 * m * H * 2))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]

        def forced(split):
            def run():
                ln_spec.triton_split = lambda rows, hidden, interpret: split
                out = tms(bitorch.layer_norm, sets)()
                ln_spec.triton_split = shipped
                return out
            return run
        lines = {f"bitorch_split{s}": forced(s) for s in (1, 2, 4, 8, 16)}
        lines.update(bitorch=tms(bitorch.layer_norm, sets), xla=jms(jax.jit(bln.jnp_style), jsets),
                     bijax=jms(jax.jit(bijax.layer_norm), jsets))
        print(f"C layer_norm tokens={m:3d} (shipped split {shipped(m, H, False)}): {rounds(lines)}", flush=True)

if "D" in part:  # the same bitorch kernel in a CUDA graph and launched from the host, CUPTI durations both
    for m in (1, 8):
        sets = [(torch.randn(m, H, dtype=bf, device="cuda"), *(torch.randn(H, dtype=bf, device="cuda") for _ in range(2)))
                for _ in range(timing.input_sets_for(4 * m * H * 2))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
        host = lambda: timing.runner_ms(lambda: [bitorch.layer_norm(*s) for s in sets], len(sets), timing.torch_sync)
        lines = dict(bitorch_graph=tms(bitorch.layer_norm, sets), bitorch_host=host,
                     compile_graph=tms(torch.compile(bln.eager), sets),
                     xla=jms(jax.jit(bln.jnp_style), jsets), bijax=jms(jax.jit(bijax.layer_norm), jsets))
        print(f"D layer_norm tokens={m:3d}: {rounds(lines)}", flush=True)
