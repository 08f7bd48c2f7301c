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


def queries_lines(results_path: str, lag_rate: str, suffix: str, raw_name: str, raw_label: str) -> None:
    """The QueryService suite's cases (rebuild, GetAccount at c=1 and c=64, lag), named with
    `suffix` (`_pg` for the PostgreSQL read models); the rebuild's baseline is `raw_label`'s
    rows/s, shown as `raw_name`."""
    med = Results(results_path).median
    line(f"rebuild{suffix}", "events_per_s", med("rebuild", "events_per_s"), [(raw_name, med(raw_label, "rows_per_s"))])
    for c in (1, 64):
        for metric in ("p50_us", "p99_us"):
            line(f"get_account{suffix}_c{c}", metric, med(f"get_c{c}", metric), [("echo-rpc", med(f"echo_c{c}", metric))],
                 higher_is_better=False)
        line(f"get_account{suffix}_c{c}", "calls_per_s", med(f"get_c{c}", "calls_per_s"), [("echo-rpc", med(f"echo_c{c}", "calls_per_s"))])
    case = f"lag{suffix}_{lag_rate}_per_s"
    line(case, "p50_ms", med("lag", "p50_ms"))
    line(case, "p99_ms", med("lag", "p99_ms"), [("target-p99-20ms", 20.0)], higher_is_better=False)
    line(case, "achieved_per_s", med("lag", "achieved_per_s"))
