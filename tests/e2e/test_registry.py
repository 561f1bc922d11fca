"""Private grader images: a real registry (Debian's docker-registry, htpasswd auth, plain HTTP on
127.0.0.1, which the engine treats as insecure by default) holds the course's grader image; the watcher
pulls it with the credentials of a Docker config.json (xqwatcher.yaml's registry_auth_file, or
DOCKER_CONFIG), and without them (or with a wrong password) its queue pulls nothing and the log says why,
naming the registry and the engine's reason, never the secret."""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import GRADER_IMAGE, HERE, WatcherProcess, engine_request, require_engine_and_image, write_config_root
import xqueue_standin  # noqa: E402 (harness puts tests/ on the path)

REGISTRY_BINARY = "/usr/bin/docker-registry"
COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
USER = "course-staff"
PASSWORD = "Reg1stry-pa55word-e2e"
WRONG_PASSWORD = "not-the-Reg1stry-pa55word"
TAGS = ("via-yaml", "via-env", "anonymous", "wrong-password")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args, env=None, stdin=None):
    """A command the test itself runs (the docker CLI for the push); fails the test with its output."""
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def docker_config(path, user, password):
    """A config.json as `docker login` writes it (auths, base64 user:password), at `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    with open(path, "w") as out:
        json.dump({"auths": {REGISTRY: {"auth": auth}}}, out)
    return auth


REGISTRY = None  # "127.0.0.1:PORT", set by setUpModule


def setUpModule():
    global REGISTRY, _tmp, _registry, _registry_log
    probe = unittest.TestCase()
    require_engine_and_image(probe)
    for tool in (REGISTRY_BINARY, shutil.which("htpasswd") or "htpasswd", shutil.which("docker") or "docker"):
        probe.assertTrue(os.access(tool, os.X_OK),
                         f"{tool} is missing: scripts/setup installs docker-registry, apache2-utils and docker.io")
    _tmp = tempfile.mkdtemp(prefix="xqw-registry-")
    port = free_port()
    REGISTRY = f"127.0.0.1:{port}"
    with open(os.path.join(_tmp, "htpasswd"), "w") as out:
        out.write(run("htpasswd", "-Bbn", USER, PASSWORD))
    with open(os.path.join(_tmp, "registry.yml"), "w") as out:
        out.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {_tmp}/storage
http:
  addr: {REGISTRY}
  secret: e2e-only-{port}
auth:
  htpasswd:
    realm: xqw-e2e
    path: {_tmp}/htpasswd
""")
    # The package's own service is not used: this binary, this config, this port, this test's lifetime.
    _registry_log = open(os.path.join(_tmp, "registry.log"), "wb")
    _registry = subprocess.Popen([REGISTRY_BINARY, "serve", os.path.join(_tmp, "registry.yml")],
                                 stdout=_registry_log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2)
            raise AssertionError("the registry answered /v2/ without credentials: htpasswd auth is off")
        except urllib.error.HTTPError as error:
            if error.code == 401:
                break
            raise
        except OSError:
            if _registry.poll() is not None or time.time() > deadline:
                with open(os.path.join(_tmp, "registry.log")) as log:
                    raise AssertionError(f"the registry did not start on {REGISTRY}:\n{log.read()[-3000:]}")
            time.sleep(0.1)
    # Push with the docker CLI under a private DOCKER_CONFIG (never the user's ~/.docker), then drop the
    # local tags: only the registry has these references, so the watcher must pull them.
    cli_env = dict(os.environ, DOCKER_CONFIG=os.path.join(_tmp, "cli"))
    run("docker", "login", "--username", USER, "--password-stdin", REGISTRY, env=cli_env, stdin=PASSWORD)
    for tag in TAGS:
        run("docker", "tag", GRADER_IMAGE, private_image(tag))
        run("docker", "push", private_image(tag), env=cli_env)
        run("docker", "rmi", private_image(tag))


def tearDownModule():
    try:
        for tag in TAGS:
            if REGISTRY and engine_request("GET", f"/images/{private_image(tag)}/json")[0] == 200:
                subprocess.run(["docker", "rmi", private_image(tag)], capture_output=True)
    finally:
        if "_registry" in globals():
            _registry.terminate()
            try:
                _registry.wait(30)
            except subprocess.TimeoutExpired:
                _registry.kill()
                _registry.wait()
            _registry_log.close()
        if "_tmp" in globals():
            shutil.rmtree(_tmp, ignore_errors=True)


def private_image(tag):
    return f"{REGISTRY}/course/grader:{tag}"


class PrivateImageCase(unittest.TestCase):
    """One stand-in and one watcher per test: queue `private` on the registry's image, queue `public` on
    the local grader image (served whatever happens to `private`)."""

    def start(self, tag, manager_extra="", env=None):
        self.tmp = tempfile.mkdtemp(prefix="xqw-e2e-registry-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.standin = xqueue_standin.XQueueStandin(
            xqueue_standin.StandinConfig(port=0, users={"lms": "secret-pw"}, verbose=False))
        self.standin.start()
        self.addCleanup(self.standin.stop)
        self.xqueue = self.standin.client()
        self.image = private_image(tag)
        write_config_root(self.tmp, self.standin.port,
                          {"private": {"grader_root": COURSE, "image": self.image},
                           "public": {"grader_root": COURSE}},
                          manager_extra=manager_extra)
        # An empty DOCKER_CONFIG is unset for the watcher: the runner's own never leaks into a case.
        self.watcher = WatcherProcess(self.tmp, "e2e-registry-" + os.path.basename(self.tmp),
                                      extra_env={"DOCKER_CONFIG": "", **(env or {})})
        self.addCleanup(self.watcher.stop)
        self.watcher.wait_ready()

    def submit(self, queue):
        return self.xqueue.submit(queue, student_response=RIGHT, grader_payload={"grader": "square/grader.py"})

    def result_for(self, submission_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.watcher.process.poll() is not None:
                self.fail(f"the watcher exited:\n{self.watcher.output()[-4000:]}")
            results = [r for r in self.xqueue.results() if r["submission_id"] == submission_id]
            if results:
                return results[0]
            time.sleep(0.1)
        self.fail(f"no result for {submission_id} within {timeout}s:\n{self.watcher.output()[-4000:]}")

    def wait_for_log(self, text, timeout=60):
        deadline = time.time() + timeout
        while text not in self.watcher.output():
            if self.watcher.process.poll() is not None or time.time() > deadline:
                self.fail(f"the log never said {text!r}:\n{self.watcher.output()[-4000:]}")
            time.sleep(0.1)

    def assert_no_secret_in_log(self, *secrets):
        log = self.watcher.output()
        for secret in secrets:
            self.assertNotIn(secret, log, "a registry secret is in the watcher's log")

    def assert_graded_from_registry(self):
        result = self.result_for(self.submit("private"))
        body = json.loads(result["xqueue_body"])
        self.assertTrue(body["correct"], body)
        self.assertEqual(body["score"], 1, body)
        status, _ = engine_request("GET", f"/images/{self.image}/json")
        self.assertEqual(status, 200, f"{self.image} is not on the engine after the pull")
        self.assertIn(f"pulling image {self.image} from registry {REGISTRY}", self.watcher.output())

    def assert_private_queue_pulls_nothing(self, reason):
        private = self.submit("private")
        public = self.result_for(self.submit("public"))
        self.assertTrue(json.loads(public["xqueue_body"])["correct"], public)
        # The private queue's worker has tried (and refused) to prepare its image by now.
        self.wait_for_log(f"cannot prepare image {self.image}")
        self.assertEqual(self.xqueue.submission(private)["pulled_count"], 0,
                         "a queue whose image cannot be pulled must not pull submissions it cannot grade")
        log = self.watcher.output()
        self.assertIn(f"pull from registry {REGISTRY}", log)
        self.assertIn(reason, log)
        status, _ = engine_request("GET", f"/images/{self.image}/json")
        self.assertEqual(status, 404, f"{self.image} is on the engine although the pull was refused")


class PrivateImageTest(PrivateImageCase):
    def test_credentials_from_registry_auth_file_pull_and_grade(self):
        config = os.path.join(tempfile.mkdtemp(prefix="xqw-e2e-dockercfg-"), "registry.json")
        self.addCleanup(shutil.rmtree, os.path.dirname(config), True)
        auth = docker_config(config, USER, PASSWORD)
        self.start("via-yaml", manager_extra=f"registry_auth_file: {config}\n")
        self.assert_graded_from_registry()
        self.assertIn(f"pulled image {self.image} from registry {REGISTRY} with the credentials for {REGISTRY} "
                      f"in {config}", self.watcher.output())
        self.assert_no_secret_in_log(PASSWORD, auth)

    def test_credentials_from_docker_config_pull_and_grade(self):
        directory = tempfile.mkdtemp(prefix="xqw-e2e-dockercfg-")
        self.addCleanup(shutil.rmtree, directory, True)
        auth = docker_config(os.path.join(directory, "config.json"), USER, PASSWORD)
        self.start("via-env", env={"DOCKER_CONFIG": directory})
        self.assert_graded_from_registry()
        self.assert_no_secret_in_log(PASSWORD, auth)

    def test_without_credentials_the_queue_pulls_nothing_and_the_log_says_why(self):
        self.start("anonymous")
        self.assert_private_queue_pulls_nothing("no basic auth credentials")

    def test_a_wrong_password_pulls_nothing_and_the_log_says_why_without_the_secret(self):
        config = os.path.join(tempfile.mkdtemp(prefix="xqw-e2e-dockercfg-"), "registry.json")
        self.addCleanup(shutil.rmtree, os.path.dirname(config), True)
        auth = docker_config(config, USER, WRONG_PASSWORD)
        self.start("wrong-password", manager_extra=f"registry_auth_file: {config}\n")
        self.assert_private_queue_pulls_nothing("unauthorized: authentication required")
        self.assertIn(f"with the credentials for {REGISTRY} in {config}", self.watcher.output())
        self.assert_no_secret_in_log(WRONG_PASSWORD, auth, PASSWORD)


if __name__ == "__main__":
    unittest.main()
