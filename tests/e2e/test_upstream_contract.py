"""Grader images built for the Python watcher's ContainerGrader, through the watcher binary: the test image
written to that contract (images/upstream-compat), one queue asking for it in YAML (`contract: upstream`)
and one implied by an upstream JSON conf.d naming the image, graded against the XQueue stand-in."""
import json
import os
import time
import unittest
from urllib.parse import quote

from harness import HERE, SUBMISSION_LABEL, WATCHER_LABEL, WatcherTestCase, containers_labelled, engine_request

COMPAT_IMAGE = "xqueue-watcher/test-upstream-compat:latest"
COURSE = os.path.join(HERE, "fixtures", "upstream-course")
RIGHT = "def square(x):\n    return x * x\n"
WRONG = "def square(x):\n    return x + 1\n"
# The largest submission SUBMISSION_CODE carries: MAX_ARG_STRLEN (131072) minus "SUBMISSION_CODE=" and NUL.
ENV_LIMIT = 131072 - len("SUBMISSION_CODE=") - 1

# Sleeps so the test can look at its container from outside, then reports what it sees from inside
# (shown to the student as the probe test's actual output).
PROBE = """import os, sys, time
time.sleep(3)

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as error:
        return "refused:" + os.strerror(error.errno)

def probe():
    with open("/proc/self/mountinfo") as mounts:
        tmp = [line.split() for line in mounts if line.split()[4] == "/tmp"]
    fields = tmp[0][tmp[0].index("-") + 1:]
    size = [o for o in fields[2].split(",") if o.startswith("size=")]
    with open("/proc/self/status") as status:
        caps = [l.split()[1] for l in status if l.startswith("CapEff:")][0]
    facts = {"tmp": "%d:%s:%s" % (len(tmp), fields[0], size[0] if size else "unbounded"),
             "caps": caps, "uid": str(os.getuid()), "net": ",".join(sorted(os.listdir("/sys/class/net"))),
             "root_write": attempt(lambda: open("/grader/x", "w")), "lang": os.environ["GRADER_LANGUAGE"],
             "argv": ",".join(sys.argv[1:])}
    return ";".join(k + "=" + v for k, v in sorted(facts.items())) + ";"
"""


def engine_json(path):
    status, body = engine_request("GET", path)
    return status, (json.loads(body) if status == 200 else body)


class UpstreamContractTest(WatcherTestCase):
    QUEUES = {"legacy": {"grader_root": COURSE, "image": COMPAT_IMAGE, "contract": "upstream",
                         "connections": 2, "limits": {"tmpfs": "8Mi", "timeout": "30s"}}}
    # The Python watcher's own file form: a ContainerGrader naming an image implies its contract.
    CONF_D_FILES = {"legacy-json.json": json.dumps({"legacy-json": {
        "SERVER_REF": "default", "CONNECTIONS": 1, "HANDLERS": [
            {"HANDLER": "xqueue_watcher.containergrader.ContainerGrader",
             "KWARGS": {"grader_root": COURSE, "image": COMPAT_IMAGE, "backend": "docker",
                        "cpu_limit": "500m", "memory_limit": "128Mi", "timeout": 20}}]}})}
    # Its settings in the environment.
    WATCHER_ENV = {"XQWATCHER_LOG_LEVEL": "debug", "XQWATCHER_GRADER_TIMEOUT": "25"}

    @classmethod
    def setUpClass(cls):
        status, _ = engine_request("GET", f"/images/{COMPAT_IMAGE}/json")
        assert status == 200, f"image {COMPAT_IMAGE} is missing (scripts/images builds it from images/upstream-compat)"
        super().setUpClass()
        cls.watcher.wait_ready()

    def created_for(self, submission, since):
        """Container create events the engine recorded for `submission` of this watcher since `since`."""
        filters = {"type": ["container"], "event": ["create"],
                   "label": [f"{WATCHER_LABEL}={self.watcher_id}", f"{SUBMISSION_LABEL}={submission}"]}
        status, body = engine_request(
            "GET", f"/events?since={int(since) - 1}&until={int(time.time()) + 1}&filters=" + quote(json.dumps(filters)))
        self.assertEqual(status, 200, body)
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def test_right_and_wrong_answers_in_the_yaml_queue(self):
        right = self.result_for(self.submit("legacy", "square/grader.py", RIGHT))["body"]
        self.assertIs(right["correct"], True, right)
        self.assertEqual(right["score"], 1)
        self.assertIn("CORRECT", right["msg"])
        self.assertNotIn("compat-grader:", right["msg"], "the grader's prints are staff debug")
        wrong = self.result_for(self.submit("legacy", "square/grader.py", WRONG))["body"]
        self.assertIs(wrong["correct"], False, wrong)
        self.assertEqual(wrong["score"], 0)
        self.assertIn("result-incorrect", wrong["msg"])

    def test_the_contract_implied_by_an_upstream_json_queue(self):
        right = self.result_for(self.submit("legacy-json", "square/grader.py", RIGHT))["body"]
        self.assertEqual(right["score"], 1, right)
        self.assertIn("the Python watcher's ContainerGrader contract (implied by KWARGS.image)", self.watcher.output())

    def test_a_grader_that_crashes_is_a_grader_error(self):
        body = self.result_for(self.submit("legacy", "crash/grader.py", RIGHT))["body"]
        self.assertEqual(body["score"], 0)
        self.assertIn("There was a problem running your code", body["msg"])
        self.assertNotIn("broken on purpose", body["msg"], "the grader's stderr is for staff")
        self.assertIn("the grader failed with exit code 1", self.watcher.output())

    def test_a_submission_too_large_for_the_environment_is_refused_before_anything_is_created(self):
        since = time.time()
        too_large = self.submit("legacy", "square/grader.py", "#" + "x" * ENV_LIMIT)
        body = self.result_for(too_large)["body"]
        self.assertEqual(body["score"], 0)
        self.assertIn("Your submission is larger than the 127.98 KiB this problem accepts.", body["msg"])
        self.assertEqual(self.created_for(too_large, since), [], "a container was created for it")
        # The control: one byte less fits, and its container shows in the same engine events.
        largest = self.submit("legacy", "square/grader.py", "#" + "x" * (ENV_LIMIT - 1))
        body = self.result_for(largest)["body"]
        self.assertNotIn("larger than", body["msg"], body)
        self.assertEqual(len(self.created_for(largest, since)), 1)

    def test_tmp_is_our_capped_tmpfs_the_hardening_holds_and_nothing_is_left(self):
        submission = self.submit("legacy", "probe/grader.py", PROBE)
        running = self.xqueue.wait_for(
            lambda: [c for c in containers_labelled(self.watcher_id)
                     if c["Labels"].get(SUBMISSION_LABEL) == str(submission) and c["State"] == "running"],
            timeout=60, what="the probe's container running")
        status, container = engine_json(f"/containers/{running[0]['Id']}/json")
        self.assertEqual(status, 200, container)
        volumes = [m["Name"] for m in container["Mounts"] if m["Type"] == "volume"]
        self.assertEqual(volumes, [], "the image's VOLUME /tmp became an anonymous volume")
        self.assertEqual([(m["Destination"], m["RW"]) for m in container["Mounts"]], [("/graders", False)])
        self.assertIn("size=8388608", container["HostConfig"]["Tmpfs"]["/tmp"])
        self.assertEqual(container["Config"]["Cmd"][0], "/graders/grader.py")
        self.assertEqual(container["Config"]["WorkingDir"], "/grader")
        self.assertTrue(container["HostConfig"]["ReadonlyRootfs"])
        self.assertEqual(container["HostConfig"]["CapDrop"], ["ALL"])

        body = self.result_for(submission)["body"]
        msg = body["msg"]
        self.assertIn("tmp=1:tmpfs:size=8192k;", msg)
        self.assertIn("caps=0000000000000000;", msg)
        self.assertIn("uid=65534;", msg)
        self.assertIn("net=lo;", msg)
        self.assertIn("root_write=refused:Read-only file system;", msg)
        self.assertIn("argv=/graders/grader.py,", msg)
        self.xqueue.wait_for(lambda: engine_request("GET", f"/containers/{running[0]['Id']}/json")[0] == 404,
                             timeout=30, what="the probe's container removed")

    def test_the_environment_settings_were_read(self):
        output = self.watcher.output()
        self.assertIn("environment: XQWATCHER_LOG_LEVEL: not read: pass --log-level debug", output)
        self.assertNotIn("XQWATCHER_GRADER_TIMEOUT", output, "a mapped variable raises no finding")


class UpstreamContractOnTheLmsTest(UpstreamContractTest):
    """The same cases against the stand-in playing the LMS's XQueue API (api: lms), where operators bring
    these images: its rebuilt payload, status codes and whole-point scores."""
    STANDIN_MODE = "lms"
    QUEUES = {"legacy": dict(UpstreamContractTest.QUEUES["legacy"], points=1)}


if __name__ == "__main__":
    unittest.main()
