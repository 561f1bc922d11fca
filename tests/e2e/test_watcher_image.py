"""The watcher's own image (root Dockerfile, built by scripts/images) end to end.

The containerised watcher runs as production runs it: non-root, read-only root file system, every
capability dropped, the host's engine socket mounted and its group added, the job directory and the
grader root mounted at the same path on both sides (the path rule: the engine resolves bind-mount
sources on its own host). It grades every example submission through the stand-in XQueue, reached
over the host network.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import time
import unittest
import uuid

from harness import DEMO_COURSE, DOCKER_SOCKET, containers_labelled, engine_request, require_engine_and_image

import xqueue_standin

WATCHER_IMAGE = os.environ.get("XQW_WATCHER_IMAGE", "xqueue-watcher:latest")
WATCHER_UID = 10001
QUEUE = "demo-course"


def docker(*args, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def require_watcher_image(test):
    require_engine_and_image(test)
    status, body = engine_request("GET", f"/images/{WATCHER_IMAGE}/json")
    test.assertEqual(status, 200, f"image {WATCHER_IMAGE} is missing (scripts/images builds it from the root "
                                  f"Dockerfile): {body[:200]!r}")
    test.assertIsNotNone(shutil.which("docker"), "the docker CLI is missing (scripts/setup installs docker.io)")
    return json.loads(body)


def copy_course(destination):
    """The demo course with world-readable modes, so the image's uid reads it whatever the checkout's modes."""
    shutil.copytree(DEMO_COURSE, destination)
    for directory, _, files in os.walk(destination):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def read_submission(relative):
    # Byte for byte, as scripts/demo submits them (some samples use CRLF).
    with open(os.path.join(DEMO_COURSE, relative), encoding="utf-8", errors="surrogateescape", newline="") as src:
        return src.read()


class WatcherImageTest(unittest.TestCase):
    def test_image_runs_as_non_root_with_the_documented_entrypoint(self):
        image = require_watcher_image(self)
        config = image["Config"]
        self.assertEqual(config["User"], f"{WATCHER_UID}:{WATCHER_UID}")
        self.assertEqual(config["Entrypoint"], ["xqueue-watcher"])
        self.assertEqual(config["Cmd"], ["-d", "/etc/xqueue-watcher"])
        run = docker("run", "--rm", "--entrypoint", "id", WATCHER_IMAGE, "-u")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), str(WATCHER_UID))

    def test_version_runs_in_the_image(self):
        require_watcher_image(self)
        run = docker("run", "--rm", "--read-only", "--cap-drop", "ALL", WATCHER_IMAGE, "--version")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertRegex(run.stdout.strip(), r"^xqueue-watcher \d+\.\d+\.\d+")

    def test_journal_and_job_directories_belong_to_the_watcher_user(self):
        require_watcher_image(self)
        run = docker("run", "--rm", "--entrypoint", "stat", WATCHER_IMAGE, "-c", "%u %a %n",
                     "/var/lib/xqueue-watcher/jobs", "/var/lib/xqueue-watcher/journal", "/etc/xqueue-watcher")
        self.assertEqual(run.returncode, 0, run.stderr)
        owners = {line.split()[2]: (line.split()[0], line.split()[1]) for line in run.stdout.splitlines()}
        self.assertEqual(owners["/var/lib/xqueue-watcher/jobs"][0], str(WATCHER_UID))
        self.assertEqual(owners["/var/lib/xqueue-watcher/journal"], (str(WATCHER_UID), "700"))
        self.assertEqual(owners["/etc/xqueue-watcher"][0], "0", "the config root is not the watcher's to change")


class ContainerisedWatcherGradesTheDemoCourse(unittest.TestCase):
    """One containerised watcher grading all of examples/demo-course through the stand-in."""

    @classmethod
    def setUpClass(cls):
        require_watcher_image(cls())
        with open(os.path.join(DEMO_COURSE, "expected.json")) as source:
            cls.expected = json.load(source)
        cls.tmp = tempfile.mkdtemp(prefix="xqw-image-")
        # Grading containers run as root without CAP_DAC_OVERRIDE: they must be able to traverse here.
        os.chmod(cls.tmp, 0o711)
        cls.course = os.path.join(cls.tmp, "course")
        copy_course(cls.course)
        cls.jobs = os.path.join(cls.tmp, "jobs")
        cls.journal = os.path.join(cls.tmp, "journal")
        cls.config = os.path.join(cls.tmp, "config")
        for directory in (cls.jobs, cls.journal):
            os.mkdir(directory)
            os.chown(directory, WATCHER_UID, WATCHER_UID)
        cls.standin = xqueue_standin.XQueueStandin(
            xqueue_standin.StandinConfig(port=0, users={"lms": "image-pw"}, queues=[QUEUE], verbose=False))
        cls.standin.start()
        cls.xqueue = cls.standin.client()
        cls.write_config(cls.standin.port)
        cls.watcher_id = "e2e-image-" + uuid.uuid4().hex[:10]
        cls.container = "xqw-" + cls.watcher_id
        cls.started = cls.start_watcher()

    @classmethod
    def write_config(cls, port):
        os.makedirs(os.path.join(cls.config, "conf.d"))
        with open(os.path.join(cls.config, "xqwatcher.yaml"), "w") as out:
            out.write(textwrap.dedent(f"""\
                poll_interval: 0.2s
                requests_timeout: 5s
                work_dir: {cls.jobs}
                journal_dir: /var/lib/xqueue-watcher/journal
                shutdown_grace: 30s
                metrics_port: 0
                """))
        with open(os.path.join(cls.config, "xqueue_servers.yaml"), "w") as out:
            out.write(textwrap.dedent(f"""\
                default:
                  url: http://127.0.0.1:{port}
                  username: lms
                  password: ${{XQUEUE_PASSWORD}}
                """))
        with open(os.path.join(cls.config, "conf.d", "demo-course.yaml"), "w") as out:
            out.write(textwrap.dedent(f"""\
                queues:
                  {QUEUE}:
                    connections: 3
                    grader_root: {cls.course}
                    image: xqueue-watcher/python-grader:latest
                    pull_policy: never
                    limits:
                      timeout: 30s
                """))
        for directory, _, files in os.walk(cls.config):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)

    @classmethod
    def start_watcher(cls):
        socket_gid = os.stat(DOCKER_SOCKET).st_gid
        run = docker(
            "run", "--detach", "--name", cls.container,
            "--network", "host",  # the stand-in listens on the host's 127.0.0.1
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--group-add", str(socket_gid),
            "--env", "XQUEUE_PASSWORD=image-pw",
            "--volume", f"{DOCKER_SOCKET}:/var/run/docker.sock",
            "--volume", f"{cls.config}:/etc/xqueue-watcher:ro",
            # The path rule: the same path on both sides, so the engine finds what the watcher names.
            "--volume", f"{cls.jobs}:{cls.jobs}",
            "--volume", f"{cls.course}:{cls.course}:ro",
            "--volume", f"{cls.journal}:/var/lib/xqueue-watcher/journal",
            WATCHER_IMAGE, "-d", "/etc/xqueue-watcher", "--watcher-id", cls.watcher_id, "--log-level", "debug")
        return run

    @classmethod
    def tearDownClass(cls):
        try:
            docker("rm", "--force", cls.container)  # this test's own container, by its unique name
        finally:
            cls.standin.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def logs(self):
        run = docker("logs", "--tail", "60", self.container)
        return run.stdout + run.stderr

    def state(self):
        run = docker("inspect", self.container)
        self.assertEqual(run.returncode, 0, run.stderr)
        return json.loads(run.stdout)[0]["State"]

    def wait_for_results(self, ids, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            results = {r["submission_id"]: r for r in self.xqueue.results() if r["submission_id"] in ids}
            if len(results) == len(ids):
                return results
            if not self.state()["Running"]:
                self.fail(f"the containerised watcher exited ({self.state()['ExitCode']}):\n{self.logs()}")
            time.sleep(0.2)
        self.fail(f"only {len(results)} of {len(ids)} results within {timeout}s; watcher log:\n{self.logs()}")

    def test_grades_every_example_then_stops_cleanly_as_non_root(self):
        self.assertEqual(self.started.returncode, 0, self.started.stderr)
        submitted = {}
        for relative in sorted(self.expected):
            exercise = relative.split("/")[0]
            sid = self.xqueue.submit(QUEUE, student_response=read_submission(relative),
                                     grader_payload={"grader": f"{exercise}/grader.py"},
                                     student_info={"anonymous_student_id": "image-e2e", "random_seed": 1})
            submitted[sid] = relative
        results = self.wait_for_results(set(submitted))
        for sid, relative in sorted(submitted.items(), key=lambda item: item[1]):
            with self.subTest(submission=relative):
                body = results[sid]["body"]
                self.assertAlmostEqual(float(body["score"]), float(self.expected[relative]), places=6, msg=body)
                self.assertIn("result-", body["msg"])

        # Not root, the watcher still wakes waiting containers through the job directory's FIFO (0604: their
        # root reads it as "others"), not with an engine call each.
        logs = docker("logs", self.container)
        self.assertIn("job_delivery=fifo", logs.stdout + logs.stderr, self.logs())

        # The process inside runs as the image's user, not root, and holds no capabilities.
        status = docker("exec", self.container, "cat", "/proc/1/status")
        self.assertEqual(status.returncode, 0, status.stderr)
        fields = dict(line.split(":", 1) for line in status.stdout.splitlines() if ":" in line)
        self.assertEqual(fields["Uid"].split()[:2], [str(WATCHER_UID), str(WATCHER_UID)])
        self.assertEqual(int(fields["CapEff"].strip(), 16), 0)

        stop = docker("stop", "--time", "60", self.container, timeout=90)
        self.assertEqual(stop.returncode, 0, stop.stderr)
        self.assertEqual(self.state()["ExitCode"], 0, self.logs())
        self.assertEqual(containers_labelled(self.watcher_id), [], "no grading container may be left behind")
        self.assertEqual(os.listdir(self.jobs), [], "no job directory may be left behind")
        # The watcher made the work directory private to others except for traversal.
        self.assertEqual(stat.S_IMODE(os.stat(self.jobs).st_mode), 0o711)


if __name__ == "__main__":
    unittest.main()
