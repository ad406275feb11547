"""dist/grafana/rsttrace.json is a valid Grafana dashboard whose every query
uses metrics that exist: the metric names of each PromQL expression are read
(functions, keywords, label names and Grafana variables set aside) and each
must be a family of a real scrape of rsttrace's --metrics page (rsttrace run
in a network namespace of this test's own). It has the panels issue 19 asks
for. Root (to run rsttrace); 77 otherwise."""

import json
import os
import random
import re
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "root"))
import harness  # noqa: E402

DASHBOARD = os.path.join(HERE, "..", "..", "dist", "grafana", "rsttrace.json")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
            "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group"}


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                     # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                    # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\$\w+", " ", expr)                        # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        if match.group() in KEYWORDS or rest.startswith("("):
            continue
        names.add(match.group())
    return names


def main():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)  # valid JSON, or this raises
    assert dashboard.get("uid") and dashboard.get("title") and dashboard.get("schemaVersion"), "not a dashboard"
    panels = dashboard["panels"]
    titles = " | ".join(p["title"] for p in panels).lower()
    for wanted in ("verdicts", "remote addresses", "prefixes", "storms", "losses", "cpu", "memory"):
        assert wanted in titles, f"no panel about {wanted}: {titles}"
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    queries = [(p["title"], t["expr"]) for p in panels for t in p["targets"]]
    queries += [("variable " + v["name"], v["definition"]) for v in dashboard["templating"]["list"] if "definition" in v]
    assert all(expr for _, expr in queries), "an empty query"

    harness.require_root()
    netns = harness.enter_private_netns()
    address = f"127.0.0.1:{random.randint(30000, 39999)}"
    with harness.Rsttrace("--netns", str(netns), "--metrics", address):
        page = harness.wait_until(lambda: _scrape(address), timeout=30, what="a scrape")
    families = set(re.findall(r"^# TYPE (\S+) ", page, re.M))
    used = set()
    for title, expr in queries:
        # label_values(METRIC, LABEL): the metric alone.
        variable = re.fullmatch(r"\s*label_values\(\s*([^,]+),\s*\w+\s*\)\s*", expr)
        names = metric_names(variable.group(1) if variable else expr)
        assert names, f"{title}: no metric in {expr}"
        missing = names - families
        assert not missing, f"{title}: {expr} uses {sorted(missing)}, not on the page ({sorted(families)})"
        used |= names
    print(f"{len(panels)} panels, {len(queries)} queries, all on the page: {', '.join(sorted(used))}")
    return 0


def _scrape(address):
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
