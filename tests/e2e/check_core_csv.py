"""check_core_csv: a base_eval CORE CSV against the Python reference's expected_core.json (used by
e2e_base_eval_core.sh and e2e_dist_base_eval.sh; not a test itself).

    python3 tests/e2e/check_core_csv.py base_eval/base_model_000003.csv expected_core.json [_max_per_task_10]

Every task's accuracy must equal the reference's to the CSV's 6 decimals; with no suffix (all examples) the
CORE row must also be within 1e-6 of the reference's core_metric."""
import json
import sys

csv_path, expected_path = sys.argv[1], sys.argv[2]
suffix = sys.argv[3] if len(sys.argv) > 3 else ""
rows = [[c.strip() for c in line.split(",")] for line in open(csv_path) if line.strip()]
assert rows[0] == ["Task", "Accuracy", "Centered"], rows[0]
exp = json.load(open(expected_path))
key = "accuracy" + suffix
tasks = {r[0]: r for r in rows[1:-1]}
assert set(tasks) == {k for k in exp if k != "core_metric"}, tasks.keys()
for label, r in tasks.items():
    assert r[1] == f"{exp[label][key]:.6f}", (label, r, exp[label][key])
if not suffix:
    assert rows[-1][0] == "CORE" and abs(float(rows[-1][2]) - exp["core_metric"]) < 1e-6, rows[-1]
print("CSV matches the Python reference:", suffix or "all examples")
