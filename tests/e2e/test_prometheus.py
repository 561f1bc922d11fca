"""The chart's Grafana dashboard and alert rules, checked by Prometheus itself (Debian's `prometheus`
package: /usr/bin/prometheus and /usr/bin/promtool).

* RulesFileTest: `promtool check rules` and `promtool test rules` on the rules file; every alert has its
  `for:`, severity, summary, description and a runbook pointer to a section of docs/operators.md, and a
  unit-test case where it fires and one where it does not.
* ScrapedNamesTest: a real watcher grades submissions while a real Prometheus scrapes it every second;
  every metric and label the dashboard and the rules read, and every metric docs/operators.md lists (with
  its type and labels), must be in what Prometheus scraped; every panel query and rule expression must run.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import promql
from harness import HERE, SOURCE_DIR, WatcherTestCase, served_metrics_port

try:
    import yaml
except ImportError:  # reported by each test: scripts/setup installs python3-yaml
    yaml = None

CHART = os.path.join(SOURCE_DIR, "helm", "xqueue-watcher")
RULES = os.path.join(CHART, "rules", "xqueue-watcher.rules.yaml")
RULES_TESTS = os.path.join(SOURCE_DIR, "tests", "prometheus", "xqueue-watcher.rules.test.yaml")
DASHBOARD = os.path.join(CHART, "dashboards", "xqueue-watcher.json")
OPERATORS = os.path.join(SOURCE_DIR, "docs", "operators.md")
COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
SCRAPE_JOB = "xqueue-watcher"  # the alerts select jobs named like the chart's metrics Service
SEVERITIES = {"critical", "warning", "info"}
PACKAGE_HINT = "scripts/setup installs Debian's prometheus package"


def require_tools(test):
    if yaml is None:
        test.fail("PyYAML is missing: scripts/setup installs Debian's python3-yaml")
    for tool in ("promtool", "prometheus"):
        if shutil.which(tool) is None:
            test.fail(f"{tool} is not installed: {PACKAGE_HINT}")


def load_rules():
    with open(RULES) as source:
        return [rule for group in yaml.safe_load(source)["groups"] for rule in group["rules"]]


def load_dashboard():
    with open(DASHBOARD) as source:
        return json.load(source)


def dashboard_queries(dashboard):
    """(where, expr) for every panel target, rows' panels included."""
    out = []
    for panel in dashboard["panels"]:
        for inner in [panel] + panel.get("panels", []):
            for target in inner.get("targets", []):
                out.append((f"panel {inner['title']!r} target {target['refId']}", target["expr"]))
    return out


def dashboard_variable_queries(dashboard):
    out = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            out.append((f"variable ${variable['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def operators_anchors():
    with open(OPERATORS) as source:
        return {github_anchor(line.lstrip("#")) for line in source if line.startswith("#")}


def documented_metrics():
    """(name, type, [labels]) of every row of the table under docs/operators.md's "## Metrics"."""
    with open(OPERATORS) as source:
        text = source.read()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`xqueue_watcher_"):
            rows.append((cells[0].strip("`"), cells[1], re.findall(r"`(\w+)`", cells[2])))
    return rows


class PromqlNamesTest(unittest.TestCase):
    """The extractor the scrape checks rely on (pure; no engine, no Prometheus)."""

    def test_selectors_functions_and_grouping(self):
        found = promql.names('histogram_quantile(0.95, sum by (le, phase) (rate('
                             'xqueue_watcher_container_phase_duration_seconds_bucket{queue=~"$queue"}'
                             '[$__rate_interval])))')
        self.assertEqual(found.metrics, {"xqueue_watcher_container_phase_duration_seconds_bucket"})
        self.assertEqual(found.selector_labels, {("xqueue_watcher_container_phase_duration_seconds_bucket", "queue")})
        self.assertEqual(found.grouping_labels, {"le", "phase"})

    def test_aggregations_with_the_clause_first_or_last(self):
        found = promql.names("sum by (queue) (rate(a_total[5m])) / max without (instance) (b) + count(c) by (le)")
        self.assertEqual(found.metrics, {"a_total", "b", "c"})
        self.assertEqual(found.grouping_labels, {"queue", "instance", "le"})

    def test_binary_operators_keywords_and_ranges(self):
        found = promql.names('a_total{outcome!="ok"} / ignoring(outcome) group_left b_total > 0.1 '
                             'and on (queue) delta(c[15m:1m]) >= 0 unless bool d offset 5m')
        self.assertEqual(found.metrics, {"a_total", "b_total", "c", "d"})
        self.assertEqual(found.grouping_labels, {"outcome", "queue"})

    def test_name_matcher_and_strings_are_not_names(self):
        found = promql.names('count_values("version", {__name__="x_info", job="by"}) or vector(1)')
        self.assertEqual(found.metrics, {"x_info"})
        self.assertEqual(found.selector_labels, {("x_info", "job")})

    def test_grafana_variable_queries(self):
        found = promql.grafana_variable_names("label_values(xqueue_watcher_queue_length, queue)")
        self.assertEqual((found.metrics, found.grouping_labels), ({"xqueue_watcher_queue_length"}, {"queue"}))
        self.assertEqual(promql.runnable('rate(x{queue=~"$queue"}[$__rate_interval])', {"queue": ".*"}),
                         'rate(x{queue=~".*"}[1m])')

    def test_unreadable_expressions_are_refused(self):
        for bad in ("x{queue=1}", "x{queue=\"a\"", "rate(x[5m)", "x # y"):
            with self.subTest(expr=bad), self.assertRaises(promql.PromQLSyntaxError):
                promql.names(bad)


class RulesFileTest(unittest.TestCase):
    """The rules file as promtool and an operator read it."""

    def setUp(self):
        require_tools(self)

    def promtool(self, *args):
        return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)

    def test_promtool_checks_the_rules_file(self):
        run = self.promtool("check", "rules", RULES)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn(f"SUCCESS: {len(load_rules())} rules found", run.stdout)

    def test_promtool_unit_tests_pass(self):
        run = self.promtool("test", "rules", RULES_TESTS)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("SUCCESS", run.stdout)

    def test_every_alert_is_unit_tested_firing_and_quiet(self):
        with open(RULES_TESTS) as source:
            cases = [case for test in yaml.safe_load(source)["tests"] for case in test.get("alert_rule_test", [])]
        alerts = {rule["alert"] for rule in load_rules() if "alert" in rule}
        self.assertEqual(len(alerts), 6, "watcher down, engine, backlog, results, errors, journal")
        for alert in sorted(alerts):
            with self.subTest(alert=alert):
                mine = [case for case in cases if case["alertname"] == alert]
                self.assertTrue([c for c in mine if c.get("exp_alerts")], f"no unit test where {alert} fires")
                self.assertTrue([c for c in mine if not c.get("exp_alerts")], f"no unit test where {alert} is quiet")
        self.assertEqual({case["alertname"] for case in cases} - alerts, set(), "tests of alerts that do not exist")

    def test_every_alert_has_for_severity_annotations_and_a_runbook_in_operators_md(self):
        anchors = operators_anchors()
        for rule in load_rules():
            with self.subTest(alert=rule.get("alert")):
                self.assertIn("alert", rule, f"a recording rule in the alerts file: {rule}")
                self.assertRegex(rule.get("for", ""), r"^\d+[smh]$", "each alert waits before it fires")
                self.assertIn(rule.get("labels", {}).get("severity"), SEVERITIES)
                annotations = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    self.assertTrue(annotations.get(key), f"{rule['alert']} has no {key} annotation")
                page, _, anchor = annotations["runbook_url"].partition("#")
                self.assertEqual(page, "docs/operators.md")
                self.assertEqual(anchor, rule["alert"].lower())
                self.assertIn(anchor, anchors, f"docs/operators.md has no section #{anchor} for {rule['alert']}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrometheusServer:
    """A real `prometheus` scraping one target every second, with its own config and storage in a
    temporary directory; stop() kills it and removes the directory."""

    def __init__(self, target, rule_files):
        self.dir = tempfile.mkdtemp(prefix="xqw-prometheus-")
        self.port = free_port()
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "rule_files": list(rule_files),
                  "scrape_configs": [{"job_name": SCRAPE_JOB, "static_configs": [{"targets": [target]}]}]}
        config_path = os.path.join(self.dir, "prometheus.yml")
        with open(config_path, "w") as out:
            yaml.safe_dump(config, out)
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def get(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def api(self, path, **params):
        status, body = self.get(path, **params)
        reply = json.loads(body)
        return status, reply

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("prometheus exited (%s):\n%s" % (self.process.returncode, self.output()[-3000:]))
            try:
                if self.get("/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus was not ready within %ss:\n%s" % (timeout, self.output()[-3000:]))

    def stop(self):
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(30)
        finally:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class ScrapedNamesTest(WatcherTestCase):
    """Every name the dashboard, the rules and the docs use, against a real Prometheus' scrape of a real
    watcher that has graded a right answer and an error (so the verdict labels exist)."""

    QUEUES = {"course": {"grader_root": COURSE, "connections": 2}}
    WATCHER_ARGS = ("--metrics-address", "127.0.0.1", "--metrics-port", "0")
    VERDICTS = ("graded", "grader_not_found")

    @classmethod
    def setUpClass(cls):
        require_tools(cls())
        super().setUpClass()
        cls.prometheus = None
        try:
            cls.metrics_port = served_metrics_port(cls.watcher, timeout=30)
            cls.prometheus = PrometheusServer(f"127.0.0.1:{cls.metrics_port}", [RULES])
            cls.prometheus.wait_ready()
            test = cls()
            right = test.submit("course", "square/grader.py", RIGHT)
            missing = test.submit("course", "no-such-problem/grader.py", RIGHT)
            test.assertEqual(test.result_for(right)["body"]["score"], 1)
            test.assertIn("grader not found", test.result_for(missing)["body"]["msg"])
            cls.wait_for_scrape_of_verdicts()
            cls.names = set(cls.query_api("/api/v1/label/__name__/values"))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.prometheus is not None:
                cls.prometheus.stop()
        finally:
            super().tearDownClass()

    @classmethod
    def query_api(cls, path, **params):
        status, reply = cls.prometheus.api(path, **params)
        if status != 200 or reply.get("status") != "success":
            raise AssertionError(f"prometheus {path} {params}: {status} {reply}")
        return reply["data"]

    @classmethod
    def wait_for_scrape_of_verdicts(cls, timeout=60):
        """Until Prometheus has scraped both verdicts and evaluated every rule."""
        deadline = time.time() + timeout
        verdicts, rules = set(), []
        while time.time() < deadline:
            data = cls.query_api("/api/v1/query", query="xqueue_watcher_submissions_graded_total")
            verdicts = {sample["metric"].get("verdict") for sample in data["result"]}
            rules = [rule for group in cls.query_api("/api/v1/rules")["groups"] for rule in group["rules"]]
            evaluated = rules and all(rule.get("lastEvaluation", "").startswith("2") and
                                      not rule["lastEvaluation"].startswith("0001") for rule in rules)
            if set(cls.VERDICTS) <= verdicts and evaluated:
                return
            time.sleep(0.5)
        raise AssertionError(f"within {timeout}s Prometheus scraped verdicts {sorted(verdicts)} (wanted "
                             f"{list(cls.VERDICTS)}) and evaluated {len(rules)} rules; its log:\n"
                             + cls.prometheus.output()[-3000:])

    def series(self, metric):
        return self.query_api("/api/v1/series", **{"match[]": metric})

    def label_names(self, metric):
        return {label for labels in self.series(metric) for label in labels}

    def check_names(self, where, found):
        """Every metric of `found` is scraped; every label it matches or groups by is on those series."""
        missing_metrics = sorted(found.metrics - self.names)
        self.assertFalse(missing_metrics, f"{where} uses metric(s) {missing_metrics} that Prometheus never "
                                          f"scraped from the watcher")
        labels_of = {metric: self.label_names(metric) for metric in found.metrics}
        for metric, label in sorted(found.selector_labels, key=str):
            have = labels_of[metric] if metric else set().union(*labels_of.values())
            self.assertIn(label, have, f"{where} matches label {label!r} on {metric}, which Prometheus scraped "
                                       f"only with labels {sorted(have)}")
        everything = set().union(*labels_of.values()) if labels_of else set()
        for label in sorted(found.grouping_labels):
            self.assertIn(label, everything, f"{where} groups by label {label!r}, which no series of "
                                             f"{sorted(found.metrics)} has (they have {sorted(everything)})")

    def check_runs(self, where, expr):
        status, reply = self.prometheus.api("/api/v1/query", query=promql.runnable(expr, {"queue": ".*"}))
        self.assertEqual((status, reply.get("status")), (200, "success"),
                         f"{where}: Prometheus refused {expr!r}: {reply.get('error')}")

    def test_dashboard_reads_only_scraped_metrics_and_labels(self):
        dashboard = load_dashboard()
        queries = dashboard_queries(dashboard)
        self.assertGreaterEqual(len(queries), 15, "the dashboard lost its panels")
        for where, expr in queries:
            with self.subTest(where=where):
                self.check_names(where, promql.names(expr))
                self.check_runs(where, expr)
        for where, query in dashboard_variable_queries(dashboard):
            with self.subTest(where=where):
                self.check_names(where, promql.grafana_variable_names(query))

    def test_the_dashboard_covers_what_operators_watch(self):
        read = set()
        for _, expr in dashboard_queries(load_dashboard()):
            read |= promql.names(expr).metrics
        for metric in ("xqueue_watcher_queue_length", "xqueue_watcher_submissions_pulled_total",
                       "xqueue_watcher_submissions_graded_total", "xqueue_watcher_grading_duration_seconds_bucket",
                       "xqueue_watcher_container_phase_duration_seconds_bucket", "xqueue_watcher_jobs_in_flight",
                       "xqueue_watcher_containers_ready",
                       "xqueue_watcher_xqueue_requests_total", "xqueue_watcher_engine_up",
                       "xqueue_watcher_journal_backlog"):
            self.assertIn(metric, read, f"no panel shows {metric}")

    def test_rules_read_only_scraped_metrics_and_labels_and_run(self):
        for rule in load_rules():
            where = f"alert {rule['alert']}"
            with self.subTest(where=where):
                self.check_names(where, promql.names(rule["expr"]))
                self.check_runs(where, rule["expr"])

    def test_prometheus_evaluates_every_rule_without_error(self):
        rules = [rule for group in self.query_api("/api/v1/rules")["groups"] for rule in group["rules"]]
        self.assertEqual(sorted(rule["name"] for rule in rules), sorted(rule["alert"] for rule in load_rules()))
        for rule in rules:
            self.assertEqual(rule["health"], "ok", f"{rule['name']}: {rule.get('lastError')}")

    def test_a_healthy_watcher_raises_no_down_or_engine_alert(self):
        up = self.query_api("/api/v1/query", query=f'up{{job="{SCRAPE_JOB}"}}')["result"]
        self.assertEqual([sample["value"][1] for sample in up], ["1"])
        by_name = {rule["alert"]: rule["expr"] for rule in load_rules()}
        for alert in ("XQueueWatcherDown", "XQueueWatcherEngineUnreachable"):
            result = self.query_api("/api/v1/query", query=by_name[alert])["result"]
            self.assertEqual(result, [], f"{alert}'s expression is true for a healthy watcher")
        # The down alert selects this job: with the watcher's target, `up == 1` is what the alert negates.
        selected = self.query_api("/api/v1/query", query=by_name["XQueueWatcherDown"].replace("== 0", "== 1"))
        self.assertEqual(len(selected["result"]), 1, "XQueueWatcherDown does not select the watcher's job")

    def test_every_metric_in_operators_md_is_scraped_with_its_type_and_labels(self):
        documented = documented_metrics()
        self.assertGreaterEqual(len(documented), 14, "the metrics table of docs/operators.md was not found")
        metadata = self.query_api("/api/v1/metadata")
        for name, kind, labels in documented:
            with self.subTest(metric=name):
                series_names = [name + suffix for suffix in ("_bucket", "_sum", "_count")] if kind == "histogram" else [name]
                missing = [n for n in series_names if n not in self.names]
                self.assertFalse(missing, f"docs/operators.md lists {name} ({kind}); Prometheus scraped no {missing}")
                self.assertIn(name, metadata, f"Prometheus has no TYPE for {name}")
                self.assertEqual(metadata[name][0]["type"], kind, f"{name} is documented as a {kind}")
                for label in labels:
                    self.assertIn(label, self.label_names(series_names[0]),
                                  f"docs/operators.md gives {name} the label {label!r}; the scrape has none")
        exported = {n for n in self.names if n.startswith("xqueue_watcher_")}
        listed = {n + s for n, kind, _ in documented for s in (("_bucket", "_sum", "_count") if kind == "histogram" else ("",))}
        self.assertEqual(exported - listed, set(), "metrics the watcher exports that docs/operators.md does not list")


if __name__ == "__main__":
    unittest.main()
