"""bench.kernel_code, the norms' and the mean's GPU code without a GPU: bitorch's SASS for sm_90 and bijax's Triton IR."""
import os
import re
import subprocess
import sys

from bispec import layer_norm as layer_norm_spec


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
    # Shared memory (bitorch's, bijax's): Triton's cross-warp sums take 32 bytes; tree_ptx's static array none, which
    # serves bijax's whole rows (and both frameworks' layer_norm split rows under bispec.layer_norm.SPLIT_IN_BLOCK),
    # so that XLA leaves bijax's kernel the whole L1 (_kernel_helpers); the mean's row kernel keeps Triton's in both
    in_block = 0 if layer_norm_spec.SPLIT_IN_BLOCK else 32
    shared = {(m[1], m[2]): (int(m[3]), int(m[4])) for m in
              re.finditer(r"bitorch (\w+)_kernel rows=(\d+):.*SHARED:(\d+); bijax .*SHARED:(\d+)", summary)}
    assert shared == {("rms_norm", "8"): (32, 32), ("layer_norm", "8"): (in_block, in_block),
                      ("rms_norm", "1024"): (32, 0), ("layer_norm", "1024"): (32, 0),
                      ("reduce_rows", "8"): (64, 64), ("reduce_rows", "1024"): (64, 64)}, summary
