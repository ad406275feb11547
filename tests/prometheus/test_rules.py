"""dist/prometheus/rsttrace.rules.yml: `promtool check rules` is clean,
`promtool test rules` passes on the series of rsttrace.rules.test.yml, and
that file has, for every alert of the rules, a case where it fires and one
where it stays silent (a new alert without its test fails here)."""

import os
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "..", "dist", "prometheus", "rsttrace.rules.yml")
TESTS = os.path.join(HERE, "rsttrace.rules.test.yml")


def main():
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: no promtool (apt-get install prometheus; scripts/install-deps --test)")
        return 77
    check = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True)
    print(check.stdout + check.stderr)
    assert check.returncode == 0, "promtool check rules failed"
    test = subprocess.run([promtool, "test", "rules", os.path.basename(TESTS)], cwd=HERE,
                          capture_output=True, text=True)
    print(test.stdout + test.stderr)
    assert test.returncode == 0, "promtool test rules failed"

    with open(RULES) as f:
        rules = yaml.safe_load(f)
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    records = [rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule]
    with open(TESTS) as f:
        tests = yaml.safe_load(f)
    fires, silent = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    missing = [a for a in alerts if a not in fires or a not in silent]
    assert not missing, f"alerts without a firing and a silent case in {TESTS}: {missing}"
    assert len(alerts) >= 7, f"expected the seven alerts of issue 19, found {alerts}"
    print(f"{len(alerts)} alerts, each firing and silent in a test: {', '.join(alerts)}")
    print(f"{len(records)} recording rules: {', '.join(records)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
