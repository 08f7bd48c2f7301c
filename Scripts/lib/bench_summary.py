"""What the benchmark scripts share when they summarize a run: the recorded lines (one JSON
object per run, with the `label` `record` gave it), medians over rounds, and the one-line case
format: {"case", "metric", "ours", "baseline": [{"name", "value"}], "ratio": {name: ratio}} with
the ratio oriented so that higher is better (ours/baseline for a rate, baseline/ours for a
latency)."""
import json
import statistics


class Results:
    def __init__(self, path: str):
        self.rows = [json.loads(line) for line in open(path)]

    def median(self, label: str, key: str):
        values = [row[key] for row in self.rows if row["label"] == label]
        return statistics.median(values) if values else None


def line(case: str, metric: str, ours, baselines=(), higher_is_better: bool = True) -> None:
    """Prints one case; `baselines` is a list of (name, value)."""
    ratio = {name: round((ours / value) if higher_is_better else (value / ours), 2) for name, value in baselines if value and ours}
    print(json.dumps({"case": case, "metric": metric, "ours": ours,
                      "baseline": [{"name": name, "value": value} for name, value in baselines], "ratio": ratio}))
