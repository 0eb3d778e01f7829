"""bench.kernel_code, the norms' and the mean's GPU code without a GPU: bitorch's SASS for sm_90 and bijax's Triton IR."""
import os
import subprocess
import sys


def test_writes_gpu_code(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TRITON_INTERPRET": "1"}  # the tool must drop the interpreter itself
    subprocess.run([sys.executable, "-m", "bench.kernel_code", str(tmp_path), "--rows", "8,1024"], check=True, env=env,
                   cwd=root, capture_output=True, timeout=600)
    # 16-byte loads of x at 8 rows (split): rms_norm's through L1, evict-first; layer_norm's past L1
    # (bispec.layer_norm.triton_x_past_l1)
    for name, x_load in (("rms_norm", "LDG.E.EF.128"), ("layer_norm", "LDG.E.128.STRONG.GPU")):
        code = (tmp_path / f"bitorch_{name}_8.sass").read_text()
        assert x_load in code and "SHFL.BFLY" in code and code.rstrip().endswith(";")
        ir = (tmp_path / f"bijax_{name}_8.ttir").read_text()
        assert ir.startswith(f"module @bijax_{name}") and "tt.load" in ir and "#loc" not in ir
        # an unsplit row is read past L1 (bitorch's SASS: ld.global.cg; bijax: the .cg its lowering needed an alias for)
        past_l1 = (tmp_path / f"bijax_{name}_1024.ttir").read_text()
        assert "cacheModifier = cg" in past_l1 and "isVolatile" not in past_l1
    assert "LDG.E.128.STRONG.GPU" in (tmp_path / "bitorch_layer_norm_1024.sass").read_text()
    # the mean's rows: past L1 at 8 rows in both, evict-first at 1024 (bispec.reduce.*_rows_past_l1)
    assert "LDG.E.128.STRONG.GPU" in (tmp_path / "bitorch_mean_8.sass").read_text()
    assert "LDG.E.EF.128" in (tmp_path / "bitorch_mean_1024.sass").read_text()
    assert "cacheModifier = cg" in (tmp_path / "bijax_mean_8.ttir").read_text()
    assert "evict_first" in (tmp_path / "bijax_mean_1024.ttir").read_text()
    summary = (tmp_path / "summary.txt").read_text()
    # bitorch's norms take shared memory for the cross-warp sums, and so do bijax's split rows (8 rows); bijax's whole
    # rows take none (tree_total's static array), so that XLA leaves them the whole L1 (_kernel_helpers)
    lines = [line for line in summary.splitlines() if "mean" not in line]
    assert len(lines) == 4 and all(line.count("SHARED:32") == (2 if "rows=8:" in line else 1) for line in lines)
    assert all(line.endswith("SHARED:0") for line in lines if "rows=1024:" in line)
