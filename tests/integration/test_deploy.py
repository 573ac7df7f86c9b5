"""deploy/: the Prometheus alert rules pass promtool, and every spanfeed
metric the alerts and the Grafana dashboard query is one spanfeed exports
(docs/metrics.md, which the counter_list test keeps equal to the code)."""
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from common import SpanfeedTestCase  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def documented_families():
    return set(re.findall(r"^\| `(spanfeed_[a-z0-9_]+)`", read("docs/metrics.md"), re.M))


def queried(text):
    names = set(re.findall(r"\b(spanfeed_[a-z0-9_]+)", text))
    # histogram series are queried by their _bucket/_count/_sum children
    return {re.sub(r"_(bucket|count|sum)$", "", n) if n.endswith(("_bucket", "_count", "_sum")) else n
            for n in names}


class Deploy(SpanfeedTestCase):
    def test_alert_rules_pass_promtool(self):
        r = subprocess.run(["promtool", "check", "rules", os.path.join(ROOT, "deploy/prometheus-alerts.yml")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_alerts_and_dashboard_query_exported_metrics(self):
        docs = documented_families()
        self.assertGreater(len(docs), 30)
        dashboard = json.loads(read("deploy/grafana-dashboard.json"))
        exprs = []

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ("expr", "query") and isinstance(v, str):
                        exprs.append(v)
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(dashboard)
        self.assertGreater(len(exprs), 10)
        for name, text in (("alerts", read("deploy/prometheus-alerts.yml")), ("dashboard", "\n".join(exprs))):
            unknown = sorted(queried(text) - docs)
            self.assertEqual(unknown, [], f"{name} queries metrics spanfeed does not export")


if __name__ == "__main__":
    unittest.main()
