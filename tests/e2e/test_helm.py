"""The Helm chart (helm/xqueue-watcher) with the real Helm 3: lint and render every engine mode and grader
source, then check the rendered manifests: limits and securityContext on every container, probes on the
real port and paths, the path rule, and the ConfigMap's config root through `xqueue-watcher check-config`.
"""
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BINARY, DEMO_COURSE, SOURCE_DIR

try:
    import yaml
except ImportError:  # reported by each test: scripts/setup installs python3-yaml
    yaml = None

CHART = os.path.join(SOURCE_DIR, "helm", "xqueue-watcher")
MODES = ("dind", "hostSocket", "external")
SOURCES = ("pvc", "configMaps", "bundle")
NAMESPACE = "grading"
RELEASE = "xqw"
FULLNAME = "xqw-xqueue-watcher"
SECRET_DIR = "/run/secrets/xqueue-watcher"
GRADERS = "/srv/xqueue-watcher/graders"
SOCKET_GROUP = 998
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/managed-by", "helm.sh/chart")


def helm(*args):
    return subprocess.run(["helm", *args], capture_output=True, text=True, timeout=120)


def demo_queues():
    """conf.d/demo-course.yaml's queues, as an operator pastes them into values.yaml, plus a slow queue."""
    with open(os.path.join(SOURCE_DIR, "conf.d", "demo-course.yaml")) as source:
        queues = yaml.safe_load(source)["queues"]
    queues["demo-course"]["grader_root"] = "demo-course"
    queues["slow-course"] = {"connections": 1, "grader_root": "demo-course", "limits": {"timeout": "1m30s"}}
    return queues


def scenario(mode, source):
    """Values for one engine mode and grader source."""
    with open(os.path.join(DEMO_COURSE, "01-average", "grader.py")) as grader:
        grader_py = grader.read()
    return {
        "xqueue": {"url": "http://xqueue.openedx.svc:8000", "password": "helm-test-pw"},
        "queues": demo_queues(),
        "engine": {"mode": mode, "hostSocket": {"socketGroup": SOCKET_GROUP},
                   "external": {"hostWorkDir": "/srv/engine/jobs", "hostGraderRoot": "/srv/engine/graders"}},
        "graders": {"source": source, "pvc": {"claimName": "courses"},
                    "configMaps": [{"path": "demo-course/01-average", "files": {"grader.py": grader_py}},
                                   {"path": "demo-course/02-rectangle-script", "name": "rectangle-grader"}],
                    "bundle": {"image": {"repository": "registry.example/demo-course-graders", "tag": "2025.1"}}},
    }


def merged(base, overrides):
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


class Rendered:
    """The manifests of one `helm template`, indexed by kind and name."""

    def __init__(self, text):
        self.docs = [doc for doc in yaml.safe_load_all(text) if doc]
        self.by_kind = {}
        for doc in self.docs:
            self.by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    def one(self, kind, name=FULLNAME):
        return self.by_kind[kind][name]

    def kinds(self):
        return set(self.by_kind)

    @property
    def pod(self):
        return self.one("Deployment")["spec"]["template"]["spec"]

    def containers(self):
        return self.pod.get("initContainers", []) + self.pod["containers"]

    def container(self, name):
        return next(c for c in self.containers() if c["name"] == name)

    def config_file(self, key):
        return yaml.safe_load(self.one("ConfigMap")["data"][key])


class HelmTestCase(unittest.TestCase):
    def setUp(self):
        if yaml is None:
            self.fail("PyYAML is missing: scripts/setup installs Debian's python3-yaml")
        if shutil.which("helm") is None:
            self.fail("helm is not installed: scripts/setup runs scripts/helm")
        self.tmp = tempfile.mkdtemp(prefix="xqw-helm-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def values_file(self, values):
        fd, path = tempfile.mkstemp(suffix=".yaml", dir=self.tmp)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(values, out)
        return path

    def run_helm(self, command, values=None, extra=()):
        args = [command, *([RELEASE] if command == "template" else []), CHART]
        if values is not None:
            args += ["-f", self.values_file(values)]
        if command == "template":
            args += ["--namespace", NAMESPACE]
        return helm(*args, *extra)

    def render(self, values=None, extra=()):
        run = self.run_helm("template", values, extra)
        self.assertEqual(run.returncode, 0, f"helm template failed:\n{run.stderr}")
        return Rendered(run.stdout)

    def lint(self, values=None):
        run = self.run_helm("lint", values, ["--strict"])
        self.assertEqual(run.returncode, 0, f"helm lint --strict failed:\n{run.stdout}\n{run.stderr}")

    # ---- checks shared by every rendering ----

    def check_every_container(self, rendered):
        for container in rendered.containers():
            with self.subTest(container=container["name"]):
                limits = container.get("resources", {}).get("limits", {})
                self.assertIn("cpu", limits, f"{container['name']} has no CPU limit")
                self.assertIn("memory", limits, f"{container['name']} has no memory limit")
                self.assertTrue(container.get("securityContext"), f"{container['name']} has no securityContext")
                context = container["securityContext"]
                if not context.get("privileged"):
                    self.assertIs(context.get("allowPrivilegeEscalation"), False, container["name"])
                    self.assertIn("ALL", context["capabilities"]["drop"], container["name"])
                    self.assertIs(context.get("readOnlyRootFilesystem"), True, container["name"])

    def check_watcher(self, rendered):
        watcher = rendered.container("watcher")
        context = watcher["securityContext"]
        self.assertIs(context["runAsNonRoot"], True)
        self.assertNotEqual(context.get("runAsUser"), 0)
        self.assertIs(context["readOnlyRootFilesystem"], True)
        self.assertEqual(context["capabilities"]["drop"], ["ALL"])
        # Probes point at the port the watcher really serves: metrics_port in the rendered xqwatcher.yaml.
        metrics_port = rendered.config_file("xqwatcher.yaml")["metrics_port"]
        ports = {port["name"]: port["containerPort"] for port in watcher["ports"]}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = watcher[probe]["httpGet"]
            self.assertEqual(get["path"], path)
            port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
            self.assertEqual(port, metrics_port, f"{probe} is not on metrics_port")
        service = rendered.one("Service", FULLNAME + "-metrics")
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], "metrics")
        self.assertIn("--watcher-id", watcher["args"])

    def check_pod(self, rendered):
        self.assertIs(rendered.pod["automountServiceAccountToken"], False)
        account = rendered.one("ServiceAccount")
        self.assertIs(account["automountServiceAccountToken"], False)
        self.assertEqual(rendered.pod["serviceAccountName"], account["metadata"]["name"])
        self.assertIn("checksum/config", rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"])
        for doc in rendered.docs:
            for label in REQUIRED_LABELS:
                self.assertIn(label, doc["metadata"]["labels"], f"{doc['kind']} {doc['metadata']['name']}")
        selector = rendered.one("Deployment")["spec"]["selector"]["matchLabels"]
        self.assertEqual(selector, {"app.kubernetes.io/name": "xqueue-watcher", "app.kubernetes.io/instance": RELEASE})
        self.assertEqual(rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], selector)

    def mounts(self, container):
        return {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}

    def check_config(self, rendered, env=None, paths=None):
        """Lays the ConfigMap and Secret out as the pod's volumes would, then runs check-config on it.
        `paths` maps more in-pod paths to the local paths standing for them (e.g. a mounted Secret's)."""
        self.assertTrue(os.access(BINARY, os.X_OK), f"watcher binary {BINARY} is missing (build first)")
        root = os.path.join(self.tmp, "config-root")
        shutil.rmtree(root, ignore_errors=True)
        secrets, graders = os.path.join(root, "secrets"), os.path.join(root, "graders")
        os.makedirs(os.path.join(root, "conf.d"))
        os.makedirs(secrets)
        shutil.copytree(DEMO_COURSE, os.path.join(graders, "demo-course"))
        secret = rendered.one("Secret")
        for key, value in secret["data"].items():
            with open(os.path.join(secrets, key), "wb") as out:
                out.write(base64.b64decode(value))
        for key, target in (("xqwatcher.yaml", "xqwatcher.yaml"), ("xqueue_servers.yaml", "xqueue_servers.yaml"),
                            ("queues.yaml", "conf.d/queues.yaml")):
            text = rendered.one("ConfigMap")["data"][key]
            text = text.replace(SECRET_DIR, secrets).replace(GRADERS, graders)
            for pod_path, local_path in (paths or {}).items():
                text = text.replace(pod_path, local_path)
            with open(os.path.join(root, target), "w") as out:
                out.write(text)
        run = subprocess.run([BINARY, "check-config", "-d", root], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, POD_NAME="xqw-xqueue-watcher-0", **(env or {})))
        return run


class ChartTest(HelmTestCase):
    def test_helm_is_the_real_helm_3_17(self):
        run = helm("version", "--short")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout.strip(), r"^v3\.17\.\d+")

    def test_default_values_lint_and_render(self):
        self.lint()
        rendered = self.render()
        self.assertEqual(rendered.kinds(), {"ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment",
                                            "PodDisruptionBudget", "NetworkPolicy"},
                         "ServiceMonitor and autoscalers are off by default")
        self.check_every_container(rendered)
        self.check_watcher(rendered)
        self.check_pod(rendered)
        self.assertEqual(rendered.container("engine")["securityContext"]["privileged"], True,
                         "dind is the default engine mode")

    def test_every_engine_mode_and_grader_source_lints_renders_and_passes_check_config(self):
        for mode in MODES:
            for source in SOURCES:
                with self.subTest(mode=mode, source=source):
                    values = scenario(mode, source)
                    self.lint(values)
                    rendered = self.render(values)
                    self.check_every_container(rendered)
                    self.check_watcher(rendered)
                    self.check_pod(rendered)
                    run = self.check_config(rendered)
                    self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                    self.assertIn("configuration OK, 2 queues", run.stdout)
                    queues = rendered.config_file("queues.yaml")["queues"]
                    self.assertEqual(queues["demo-course"]["grader_root"], GRADERS + "/demo-course")
                    self.assertEqual(queues["demo-course"]["limits"], demo_queues()["demo-course"]["limits"],
                                     "limits reach the ConfigMap exactly as written in values")

    def test_config_check_catches_a_limit_above_the_bounds(self):
        values = merged(scenario("dind", "pvc"), {"queues": {"demo-course": {"limits": {"memory": "2Gi"}}}})
        run = self.check_config(self.render(values))
        self.assertEqual(run.returncode, 1, run.stdout)
        self.assertIn("queues.demo-course.limits.memory", run.stdout)

    def test_the_lms_api_reaches_the_server_and_its_queue_keys_pass_check_config(self):
        lms = {"xqueue": {"url": "http://lms:8000", "api": "lms"},
               "queues": {"demo-course": {"points": 1, "points_rounding": "down", "lang": "fr",
                                          "hide_output": True, "precreate": "created", "weight": 2,
                                          "max_running": 1}}}
        values = merged(scenario("dind", "pvc"), lms)
        self.lint(values)
        rendered = self.render(values)
        self.assertEqual(rendered.config_file("xqueue_servers.yaml")["default"]["api"], "lms")
        run = self.check_config(rendered)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        # The other queue has no points: the LMS would lose its fractional scores, and check-config says so.
        self.assertIn("whole points", run.stdout)
        self.assertEqual(self.render().config_file("xqueue_servers.yaml")["default"]["api"], "xqueue")
        for bad in ({"xqueue": {"api": "edx"}}, {"queues": {"q": {"points": 0}}},
                    {"queues": {"q": {"points_rounding": "banker"}}}):
            with self.subTest(values=bad):
                run = self.run_helm("template", bad)
                self.assertNotEqual(run.returncode, 0, f"{bad} was accepted")
                self.assertIn("values don't meet the specifications of the schema", run.stderr)

    def test_dind_shares_socket_jobs_and_graders_at_identical_paths(self):
        rendered = self.render(scenario("dind", "configMaps"))
        manager = rendered.config_file("xqwatcher.yaml")
        watcher, engine = self.mounts(rendered.container("watcher")), self.mounts(rendered.container("engine"))
        socket_dir = os.path.dirname(manager["docker_socket"])
        work_volume = os.path.dirname(manager["work_dir"])
        for path in (socket_dir, work_volume, GRADERS):
            self.assertIn(path, watcher, f"{path} is not mounted in the watcher")
            self.assertIn(path, engine, f"{path} is not mounted in the engine sidecar")
            self.assertEqual(watcher[path]["name"], engine[path]["name"], f"{path} differs between the containers")
        self.assertNotIn("docker_host_work_dir", manager, "identical paths need no translation")
        self.assertNotIn("docker_host_grader_root", rendered.config_file("queues.yaml")["queues"]["demo-course"])
        dind = rendered.container("engine")
        self.assertIn(f"--host=unix://{manager['docker_socket']}", dind["args"])
        self.assertFalse([arg for arg in dind["args"] if "tcp://" in arg], "the engine must not listen on TCP")
        self.assertIn("preStop", dind["lifecycle"], "the engine must outlive the watcher's shutdown")
        self.assertEqual(self.mounts(rendered.container("engine"))["/var/lib/docker"]["name"], "engine-storage")

    def test_host_socket_uses_node_paths_the_engine_sees(self):
        rendered = self.render(scenario("hostSocket", "bundle"))
        manager = rendered.config_file("xqwatcher.yaml")
        volumes = {volume["name"]: volume for volume in rendered.pod["volumes"]}
        data_dir = volumes["host-data"]["hostPath"]["path"]
        self.assertEqual(manager["work_dir"], data_dir + "/jobs", "job directories at the node's own path")
        jobs = self.mounts(rendered.container("watcher"))[manager["work_dir"]]
        self.assertEqual((jobs["name"], jobs["subPath"]), ("host-data", "jobs"))
        self.assertEqual(volumes["engine-socket"]["hostPath"], {"path": "/var/run/docker.sock", "type": "Socket"})
        self.assertEqual(rendered.pod["securityContext"]["supplementalGroups"], [SOCKET_GROUP])
        graders = self.mounts(rendered.container("watcher"))[GRADERS]
        self.assertEqual(graders["subPathExpr"], "graders/$(POD_NAME)")
        queue = rendered.config_file("queues.yaml")["queues"]["demo-course"]
        self.assertEqual(queue["docker_host_grader_root"], data_dir + "/graders/${POD_NAME}/demo-course")
        init = [c["name"] for c in rendered.pod["initContainers"]]
        self.assertEqual(init, ["prepare-host-dirs", "copy-graders"])
        self.assertEqual(rendered.container("prepare-host-dirs")["securityContext"]["capabilities"]["add"],
                         ["CHOWN", "FOWNER"])
        self.assertNotIn("engine", [c["name"] for c in rendered.pod["containers"]])

    def test_host_socket_needs_the_socket_group(self):
        values = scenario("hostSocket", "pvc")
        values["engine"]["hostSocket"]["socketGroup"] = None
        run = self.run_helm("template", values)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("engine.hostSocket.socketGroup is required", run.stderr)

    def test_external_engine_translates_paths(self):
        rendered = self.render(scenario("external", "pvc"))
        manager = rendered.config_file("xqwatcher.yaml")
        self.assertEqual(manager["docker_socket"], "/var/run/xqueue-watcher-engine/docker.sock")
        self.assertEqual(manager["docker_host_work_dir"], "/srv/engine/jobs")
        queue = rendered.config_file("queues.yaml")["queues"]["demo-course"]
        self.assertEqual(queue["docker_host_grader_root"], "/srv/engine/graders/demo-course")
        self.assertNotIn("initContainers", rendered.pod, "a PVC is mounted directly")

    def test_grader_config_maps_are_created_and_copied(self):
        rendered = self.render(scenario("dind", "configMaps"))
        created = rendered.one("ConfigMap", FULLNAME + "-graders-0")
        with open(os.path.join(DEMO_COURSE, "01-average", "grader.py")) as grader:
            self.assertEqual(created["data"]["grader.py"], grader.read())
        volumes = {volume["name"]: volume for volume in rendered.pod["volumes"]}
        self.assertEqual(volumes["graders-source-0"]["configMap"]["name"], FULLNAME + "-graders-0")
        self.assertEqual(volumes["graders-source-1"]["configMap"]["name"], "rectangle-grader")
        script = rendered.container("copy-graders")["command"][-1]
        self.assertIn('mkdir -p "$dest/demo-course/01-average"', script)
        self.assertIn("/graders-source/1/", script)

    def test_termination_grace_covers_the_longest_timeout_and_shutdown_grace(self):
        rendered = self.render(scenario("dind", "pvc"))  # slow-course: timeout 1m30s; shutdown grace 30s
        grace = rendered.pod["terminationGracePeriodSeconds"]
        self.assertGreater(grace, 90)
        self.assertEqual(grace, 90 + 30 + 15)
        bigger = merged(scenario("dind", "pvc"), {"defaults": {"limits": {"timeout": "2m"}},
                                                  "watcher": {"shutdownGrace": "45s"}})
        self.assertEqual(self.render(bigger).pod["terminationGracePeriodSeconds"], 120 + 45 + 15)
        too_short = merged(scenario("dind", "pvc"), {"terminationGrace": {"override": 60}})
        run = self.run_helm("template", too_short)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("terminationGrace.override (60) is below", run.stderr)

    def test_schema_rejects_bad_values(self):
        for bad in ({"replicaCount": "two"}, {"engine": {"mode": "docker"}}, {"queues": {"q": {"connections": 0}}},
                    {"watcher": {"shutdownGrace": "soon"}}, {"queues": {"q": {"limits": {"memroy": "1Gi"}}}},
                    {"unknownTopLevel": True}):
            with self.subTest(values=bad):
                run = self.run_helm("template", bad)
                self.assertNotEqual(run.returncode, 0, f"{bad} was accepted")
                self.assertIn("values don't meet the specifications of the schema", run.stderr)

    def test_network_policy_allows_only_xqueue_dns_and_metrics(self):
        rendered = self.render(scenario("hostSocket", "pvc"))
        policy = rendered.one("NetworkPolicy")["spec"]
        self.assertEqual(policy["policyTypes"], ["Ingress", "Egress"])
        egress_ports = sorted((port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"])
        self.assertEqual(egress_ports, [(53, "TCP"), (53, "UDP"), (8000, "TCP")])
        self.assertEqual(policy["ingress"], [{"ports": [{"port": "metrics", "protocol": "TCP"}]}])
        https = self.render(merged(scenario("dind", "pvc"), {"xqueue": {"url": "https://xqueue.example.org"}}))
        ports = {port["port"] for rule in https.one("NetworkPolicy")["spec"]["egress"] for port in rule["ports"]}
        self.assertEqual(ports, {443, 53}, "https:// means port 443 (and dind's registry egress)")

    def test_checksum_changes_when_the_config_changes(self):
        values = scenario("dind", "pvc")
        before = self.render(values).one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        values["queues"]["demo-course"]["connections"] = 3
        after = self.render(values).one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        self.assertNotEqual(before["checksum/config"], after["checksum/config"])
        self.assertEqual(before["checksum/secret"], after["checksum/secret"])

    def test_existing_secret_replaces_the_chart_secret(self):
        values = merged(scenario("dind", "pvc"), {"xqueue": {"password": "", "existingSecret": "xqueue-creds",
                                                             "passwordKey": "pw", "usernameKey": "user"}})
        rendered = self.render(values)
        self.assertNotIn("Secret", rendered.kinds())
        volumes = {volume["name"]: volume for volume in rendered.pod["volumes"]}
        self.assertEqual(volumes["credentials"]["secret"]["secretName"], "xqueue-creds")
        self.assertEqual(volumes["credentials"]["secret"]["items"],
                         [{"key": "pw", "path": "password"}, {"key": "user", "path": "username"}])
        servers = rendered.config_file("xqueue_servers.yaml")["default"]
        self.assertEqual(servers["username_file"], SECRET_DIR + "/username")
        self.assertEqual(servers["password_file"], SECRET_DIR + "/password")

    def test_grader_registry_secret_is_mounted_and_named_in_the_config(self):
        plain = self.render(scenario("dind", "pvc"))
        self.assertNotIn("registry_auth_file", plain.config_file("xqwatcher.yaml"))
        self.assertNotIn("grader-registry", {volume["name"] for volume in plain.pod["volumes"]})

        values = merged(scenario("dind", "pvc"), {"graderRegistry": {"existingSecret": "course-registry",
                                                                     "mountPath": "/etc/registry-auth"}})
        self.lint(values)
        rendered = self.render(values)
        volumes = {volume["name"]: volume for volume in rendered.pod["volumes"]}
        self.assertEqual(volumes["grader-registry"]["secret"]["secretName"], "course-registry")
        self.assertEqual(volumes["grader-registry"]["secret"]["items"],
                         [{"key": ".dockerconfigjson", "path": "config.json"}])
        mount = self.mounts(rendered.container("watcher"))["/etc/registry-auth"]
        self.assertEqual(mount["name"], "grader-registry")
        self.assertIs(mount["readOnly"], True)
        self.assertNotIn("subPath", mount, "a subPath mount would never see a rotated Secret")
        self.assertEqual(rendered.config_file("xqwatcher.yaml")["registry_auth_file"], "/etc/registry-auth/config.json")

        # The rendered config passes check-config with a dockerconfigjson in place, and check-config
        # refuses one that relies on a credential helper, naming the file and the registry.
        local = os.path.join(self.tmp, "registry-auth")
        os.makedirs(local)
        with open(os.path.join(local, "config.json"), "w") as out:
            json.dump({"auths": {"registry.example.org": {"auth": base64.b64encode(b"course:pw").decode()}}}, out)
        run = self.check_config(rendered, paths={"/etc/registry-auth": local})
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(os.path.join(local, "config.json"), "w") as out:
            json.dump({"credHelpers": {"registry.example.org": "ecr-login"}}, out)
        run = self.check_config(rendered, paths={"/etc/registry-auth": local})
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn(os.path.join(local, "config.json") + ": credHelpers.registry.example.org: registry "
                      "registry.example.org: credential helpers are not supported", run.stdout + run.stderr)

        for bad in ({"graderRegistry": {"mountPath": "relative/dir"}}, {"graderRegistry": {"secret": "x"}}):
            with self.subTest(values=bad):
                run = self.run_helm("template", bad)
                self.assertNotEqual(run.returncode, 0, f"{bad} was accepted")

    def test_optional_monitoring_and_autoscalers(self):
        values = merged(scenario("dind", "pvc"), {"serviceMonitor": {"enabled": True},
                                                  "autoscaling": {"hpa": {"enabled": True, "maxReplicas": 4}}})
        self.lint(values)
        rendered = self.render(values)
        monitor = rendered.one("ServiceMonitor")["spec"]["endpoints"][0]
        self.assertEqual((monitor["port"], monitor["path"]), ("metrics", "/metrics"))
        hpa = rendered.one("HorizontalPodAutoscaler")["spec"]
        self.assertEqual(hpa["metrics"][0]["type"], "External")
        self.assertEqual(hpa["metrics"][0]["external"]["metric"]["name"], "xqueue_watcher_queue_length")
        self.assertNotIn("replicas", rendered.one("Deployment")["spec"], "the autoscaler owns replicas")
        keda = merged(scenario("dind", "pvc"), {"autoscaling": {"keda": {"enabled": True}}})
        self.lint(keda)
        trigger = self.render(keda).one("ScaledObject")["spec"]["triggers"][0]
        self.assertEqual(trigger["type"], "prometheus")
        self.assertRegex(trigger["metadata"]["query"], r'max by \(queue\) \(xqueue_watcher_queue_length\{namespace="grading"')
        both = merged(keda, {"autoscaling": {"hpa": {"enabled": True}}})
        run = self.run_helm("template", both)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("enable either hpa or keda", run.stderr)

    def test_dashboard_and_alert_rules_are_off_by_default(self):
        rendered = self.render(scenario("dind", "pvc"))
        self.assertNotIn("PrometheusRule", rendered.kinds())
        self.assertNotIn(FULLNAME + "-dashboard", rendered.by_kind["ConfigMap"])

    def test_alert_rules_render_the_rules_file(self):
        with open(os.path.join(CHART, "rules", "xqueue-watcher.rules.yaml")) as source:
            groups = yaml.safe_load(source)["groups"]
        values = merged(scenario("dind", "pvc"), {"metrics": {"prometheusRule": {
            "enabled": True, "labels": {"release": "kube-prometheus-stack"}}}})
        self.lint(values)
        rule = self.render(values).one("PrometheusRule")
        self.assertEqual(rule["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(rule["metadata"]["namespace"], NAMESPACE)
        self.assertEqual(rule["metadata"]["labels"]["release"], "kube-prometheus-stack")
        for label in REQUIRED_LABELS:
            self.assertIn(label, rule["metadata"]["labels"])
        self.assertEqual(rule["spec"]["groups"], groups, "the PrometheusRule carries the rules file as it is")

        base = "https://git.example.org/xqueue-watcher/blob/main/docs/operators.md"
        extra = {"alert": "XQueueWatcherSlowGrading", "for": "10m", "labels": {"severity": "info"},
                 "expr": "histogram_quantile(0.95, sum by (le) (rate(xqueue_watcher_grading_duration_seconds_bucket[10m]))) > 30"}
        values = merged(values, {"metrics": {"prometheusRule": {"namespace": "monitoring", "runbookBaseUrl": base + "/",
                                                                "extraRules": [extra]}}})
        self.lint(values)
        rule = self.render(values).one("PrometheusRule")
        self.assertEqual(rule["metadata"]["namespace"], "monitoring")
        self.assertEqual([g["name"] for g in rule["spec"]["groups"]], [g["name"] for g in groups] + ["xqueue-watcher-extra"])
        self.assertEqual(rule["spec"]["groups"][-1]["rules"], [extra])
        rendered_rules = [r for g in rule["spec"]["groups"][:-1] for r in g["rules"]]
        file_rules = [r for g in groups for r in g["rules"]]
        self.assertEqual(len(rendered_rules), len(file_rules))
        for rendered_rule, file_rule in zip(rendered_rules, file_rules):
            anchor = file_rule["annotations"]["runbook_url"].partition("#")[2]
            self.assertEqual(rendered_rule["annotations"]["runbook_url"], f"{base}#{anchor}", file_rule["alert"])
            self.assertEqual(rendered_rule["expr"], file_rule["expr"])

    def test_dashboard_config_map_carries_the_sidecar_label_and_the_dashboard(self):
        with open(os.path.join(CHART, "dashboards", "xqueue-watcher.json")) as source:
            dashboard = json.load(source)
        values = merged(scenario("dind", "pvc"), {"metrics": {"dashboard": {"enabled": True}}})
        self.lint(values)
        config_map = self.render(values).one("ConfigMap", FULLNAME + "-dashboard")
        self.assertEqual(config_map["metadata"]["labels"]["grafana_dashboard"], "1")
        self.assertEqual(config_map["metadata"]["namespace"], NAMESPACE)
        self.assertEqual(list(config_map["data"]), ["xqueue-watcher.json"])
        try:
            loaded = json.loads(config_map["data"]["xqueue-watcher.json"])
        except ValueError as error:
            self.fail(f"the dashboard in the ConfigMap is not valid JSON: {error}")
        self.assertEqual(loaded, dashboard)
        variables = {v["name"]: v["type"] for v in loaded["templating"]["list"]}
        self.assertEqual(variables, {"datasource": "datasource", "queue": "query"})
        values = merged(values, {"metrics": {"dashboard": {"namespace": "grafana", "labels": {"dashboards": "openedx"},
                                                           "annotations": {"grafana_folder": "Open edX"}}}})
        config_map = self.render(values).one("ConfigMap", FULLNAME + "-dashboard")
        self.assertEqual(config_map["metadata"]["namespace"], "grafana")
        self.assertEqual(config_map["metadata"]["labels"]["dashboards"], "openedx")
        self.assertEqual(config_map["metadata"]["annotations"], {"grafana_folder": "Open edX"})

    def test_schema_rejects_bad_monitoring_values(self):
        for bad in ({"metrics": {"dashboard": {"enabled": "yes"}}}, {"metrics": {"grafana": {}}},
                    {"metrics": {"prometheusRule": {"runbookBaseUrl": "docs/operators.md"}}},
                    {"metrics": {"prometheusRule": {"extraRules": [{"expr": "up == 0"}]}}},
                    {"metrics": {"prometheusRule": {"extraRules": [{"alert": "A", "expr": "up", "severity": "x"}]}}},
                    {"metrics": {"prometheusRule": {"labels": {"release": 1}}}}):
            with self.subTest(values=bad):
                run = self.run_helm("template", bad)
                self.assertNotEqual(run.returncode, 0, f"{bad} was accepted")
                self.assertIn("values don't meet the specifications of the schema", run.stderr)

    def test_notes_render_in_every_mode(self):
        # `helm template` skips NOTES.txt; a copy of the chart renders it through tpl into a ConfigMap.
        chart = os.path.join(self.tmp, "chart")
        shutil.copytree(CHART, chart)
        shutil.copy(os.path.join(chart, "templates", "NOTES.txt"), os.path.join(chart, "notes.txt"))
        with open(os.path.join(chart, "templates", "zz-notes.yaml"), "w") as out:
            out.write('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n'
                      'data: {notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}}\n')
        for mode in MODES:
            with self.subTest(mode=mode):
                run = helm("template", RELEASE, chart, "-f", self.values_file(scenario(mode, "pvc")),
                           "--show-only", "templates/zz-notes.yaml")
                self.assertEqual(run.returncode, 0, run.stderr)
                notes = yaml.safe_load(run.stdout)["data"]["notes"]
                self.assertIn(f"Engine:  {mode}", notes)
                self.assertIn("Queues:  demo-course, slow-course", notes)
                self.assertIn("Pods stop within 135s", notes)
                self.assertNotIn("WARNING", notes)
        run = helm("template", RELEASE, chart, "--show-only", "templates/zz-notes.yaml")
        self.assertIn("WARNING: no queues are configured", yaml.safe_load(run.stdout)["data"]["notes"])

    def test_every_value_is_commented(self):
        """Each value carries a comment, on its line or just above, or sits in a block documented whole
        (a `# --` comment above an ancestor, e.g. resources or defaults); keys that only group others
        need none."""
        with open(os.path.join(CHART, "values.yaml")) as source:
            lines = source.read().splitlines()
        ancestors = []  # (indent, documented as a whole)
        checked = 0
        for number, line in enumerate(lines):
            match = re.match(r"^(\s*)(- )?([A-Za-z][\w-]*):(.*)$", line)
            if not match:
                continue
            indent = len(match.group(1))
            while ancestors and ancestors[-1][0] >= indent:
                ancestors.pop()
            block = []  # the comment lines right above
            for above in reversed(lines[:number]):
                if not above.strip().startswith("#"):
                    break
                block.append(above.strip())
            commented = bool(block) or "#" in match.group(4)
            documented_whole = any(comment.startswith("# --") for comment in block)
            is_group = match.group(4).strip() == ""
            if not is_group and not any(whole for _, whole in ancestors):
                checked += 1
                with self.subTest(line=number + 1, key=match.group(3)):
                    self.assertTrue(commented, f"values.yaml:{number + 1}: {match.group(3)} has no comment")
            ancestors.append((indent, documented_whole or any(whole for _, whole in ancestors)))
        self.assertGreater(checked, 50, "the check found too few values to be reading values.yaml right")


if __name__ == "__main__":
    unittest.main()
