"""Each of ours / the fastest peer at every token count of a bench JSON, by the mean (the table's statistic) and by
the median of the same samples (meta.rounds_median_ms): python two_stats.py FILE.json ..."""
import json
import statistics
import sys

PEERS, OURS = ("torch_compile", "torch_compile_dynamic", "xla"), ("bitorch", "bijax")
for path in sys.argv[1:]:
    meta = json.load(open(path))["meta"]
    print(f"{path}\n| tokens | " + " | ".join(f"{o}/peer mean | {o}/peer median" for o in OURS) + " |")
    print("|---" * (1 + 2 * len(OURS)) + "|")
    for tokens in meta["rounds_ms"]:
        t = {stat: {k: statistics.median_low(v) for k, v in meta[key][tokens].items() if v}
             for stat, key in (("mean", "rounds_ms"), ("median", "rounds_median_ms"))}
        cells = [f"{t[stat][o] / min(t[stat][p] for p in PEERS if p in t[stat]):.4f}" for o in OURS
                 for stat in ("mean", "median")]
        print(f"| {tokens} | " + " | ".join(cells) + " |")
