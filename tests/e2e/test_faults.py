"""Faults around the watcher: XQueue refusing, failing, slow, dropping results, refusing keys; the engine
restarting mid-job; the watcher killed mid-job. Each case: every submission ends with exactly one
accepted result at the stand-in (none lost, none graded twice), and nothing is left behind; a result whose
reply was lost is posted again, identical (at-least-once delivery, see docs/reliability.md)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (GRADER_IMAGE, HERE, SOURCE_DIR, SUBMISSION_LABEL, WATCHER_LABEL, WatcherProcess,
                     containers_labelled, engine_request, grading_containers, require_engine_and_image,
                     used_containers, write_config_root, xqueue_standin)

COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
SLOW_RIGHT = "import time\ntime.sleep({seconds})\n" + RIGHT
ENGINE_PID_FILE = "/var/lib/xqueue-watcher-engine/dockerd.pid"


class FaultTestCase(unittest.TestCase):
    PROCESSING_DELAY = 8

    def setUp(self):
        require_engine_and_image(self)
        self.tmp = tempfile.mkdtemp(prefix="xqw-faults-")
        self.standin = xqueue_standin.XQueueStandin(
            xqueue_standin.StandinConfig(port=0, users={"lms": "secret-pw"},
                                         processing_delay=self.PROCESSING_DELAY, queues=["course"]))
        self.standin.start()
        self.xqueue = self.standin.client()
        self.watcher_id = "faults-" + os.path.basename(self.tmp)
        write_config_root(self.tmp, self.standin.port,
                          {"course": {"grader_root": COURSE, "connections": 2, "limits": {"timeout": "20s"}}},
                          requests_timeout="2s", shutdown_grace="20s")
        self.watcher = None

    def tearDown(self):
        if self.watcher:
            self.watcher.stop(signal.SIGKILL if self.watcher.process.poll() is None else signal.SIGTERM)
        self.standin.stop()
        for container in containers_labelled(self.watcher_id):
            engine_request("DELETE", f"/containers/{container['Id']}?force=1")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_watcher(self):
        self.watcher = WatcherProcess(self.tmp, self.watcher_id)
        return self.watcher

    def submit(self, response=RIGHT):
        return self.xqueue.submit("course", student_response=response, grader_payload={"grader": "square/grader.py"})

    def log(self):
        return self.watcher.output()[-5000:] if self.watcher else ""

    def journal_entries(self):
        journal = os.path.join(self.tmp, "journal")
        return sorted(n for n in os.listdir(journal) if n.endswith(".json")) if os.path.isdir(journal) else []

    def put_results(self):
        """The stand-in's log of put_result requests, oldest first."""
        return [e for e in self.xqueue.requests()["log"] if e["endpoint"] == "put_result"]

    def wait_delivered(self, timeout=60):
        """Until the watcher has nothing left to post (its journal is empty) and the stand-in is handling
        no put_result (a held one completes after the watcher gave up on it): no later post can come."""
        try:
            self.xqueue.wait_for(lambda: not self.journal_entries()
                                 and all(e["finished"] is not None for e in self.put_results()),
                                 timeout=timeout, what="the journal empty and no put_result in flight")
        except TimeoutError as error:
            self.fail(f"{error}: journal {self.journal_entries()}\n{self.log()}")

    def wait_accepted(self, ids, timeout):
        try:
            self.xqueue.wait_for(lambda: all(self.xqueue.submission(i)["accepted_results"] >= 1 for i in ids),
                                 timeout=timeout, what=f"a result accepted for each of {ids}")
        except TimeoutError as error:
            self.fail(f"{error}\n{self.log()}")

    def assert_settled(self, ids, timeout=90, score=1):
        """Every id has exactly one accepted result, with the expected score, once every post is done."""
        self.wait_accepted(ids, timeout)
        self.wait_delivered()
        for i in ids:
            state = self.xqueue.submission(i)
            self.assertEqual(state["accepted_results"], 1, f"submission {i}: {state}\n{self.log()}")
            scores = {r["body"]["score"] for r in self.xqueue.results() if r["submission_id"] == i}
            self.assertEqual(scores, {score}, f"submission {i} scored {scores}")

    def assert_nothing_left(self):
        """While it runs, only containers prepared ahead and unused (one per connection) may exist once
        the background removal (retried while the engine refuses) has caught up; after a clean stop, no
        container and no job directory at all."""
        deadline = time.time() + 30
        while (used_containers(self.watcher_id) or len(containers_labelled(self.watcher_id)) > 2) \
                and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual([(c["Labels"].get("org.openedx.xqueue-watcher.submission"), c["State"])
                          for c in used_containers(self.watcher_id)], [], "used containers left\n" + self.log())
        self.assertLessEqual(len(containers_labelled(self.watcher_id)), 2, "more containers ahead than connections")
        self.assertEqual(self.watcher.stop(signal.SIGTERM), 0, self.log())
        self.assertEqual(containers_labelled(self.watcher_id), [], "containers left after the watcher stopped")
        jobs = os.path.join(self.tmp, "jobs")
        self.assertEqual(os.listdir(jobs) if os.path.isdir(jobs) else [], [], "job directories left behind")

    def wait_pulled(self, sid, timeout=60):
        self.xqueue.wait_for(lambda: self.xqueue.submission(sid)["pulled_count"] >= 1, timeout=timeout,
                             what=f"submission {sid} pulled")

    def wait_grading_container(self, timeout=60):
        """The one container of this watcher that has a job and runs it (not one waiting for a job)."""
        found = self.xqueue.wait_for(lambda: grading_containers(self.watcher_id), timeout=timeout,
                                     what="a container grading the job")
        self.assertEqual(len(found), 1, found)
        return found[0]["Id"]

    def wait_log(self, text, timeout=60, count=1):
        try:
            self.xqueue.wait_for(lambda: self.watcher.output().count(text) >= count, timeout=timeout,
                                 what=f"{count} x {text!r} in the watcher's log")
        except TimeoutError as error:
            self.fail(f"{error}\n{self.log()}")


class XQueueFaults(FaultTestCase):
    def test_xqueue_refusing_connections_at_start(self):
        ids = [self.submit() for _ in range(2)]
        self.standin.refuse_connections()
        self.start_watcher()
        # Two connections, each logging in again every login_poll_interval: several refused logins.
        self.wait_log("Couldn't connect to server", count=4)
        self.assertIsNone(self.watcher.process.poll(), "the watcher must keep running while XQueue refuses")
        self.standin.accept_connections()
        self.assert_settled(ids)
        self.assert_nothing_left()

    def test_xqueue_refusing_connections_mid_run(self):
        self.start_watcher()
        sid = self.submit(SLOW_RIGHT.format(seconds=2))
        self.wait_pulled(sid)
        self.standin.refuse_connections()  # closed until reopened below (the control API too)
        failed = f"submission {sid}: put_result failed"
        self.wait_log(failed)  # the fault was hit: its result came while the port was closed
        self.assertIn("Couldn't connect to server", self.watcher.output())
        reopened = time.time()
        self.standin.accept_connections()
        self.assert_settled([sid])
        [result] = [r for r in self.xqueue.results() if r["submission_id"] == sid]
        self.assertGreaterEqual(result["time"], reopened, "accepted only once the port was open again")
        later = self.submit()
        self.assert_settled([later])
        self.assert_nothing_left()

    def test_xqueue_answering_500(self):
        self.xqueue.faults(http_error={"get_submission": {"status": 500, "times": 3},
                                       "put_result": {"status": 500, "times": 3}})
        self.start_watcher()
        ids = [self.submit() for _ in range(2)]
        self.assert_settled(ids)
        self.assertIn("put_result failed", self.watcher.output())

    def test_xqueue_slower_than_the_request_timeout(self):
        # The held put_result (4 s) times out in the watcher (2 s), which posts again: accepted. As a
        # real XQueue, the stand-in still completes the held post (the key stays valid): the same
        # result is accepted twice. At-least-once delivery, identical content, one grading.
        self.xqueue.faults(delay={"put_result": {"seconds": 4, "times": 1},
                                  "get_submission": {"seconds": 4, "times": 1}})
        self.start_watcher()
        ids = [self.submit() for _ in range(2)]
        self.wait_accepted(ids, timeout=90)
        self.wait_delivered()  # the held post has completed too
        [held] = [e for e in self.put_results() if e["fault"] == "delay 4s"]
        self.assertEqual(held["return_code"], 0, f"the held post was accepted once it completed: {held}")
        self.assertIn("put_result failed", self.watcher.output(), "the watcher gave up on the held post")
        results = self.xqueue.results()
        [twice] = [i for i in ids if self.xqueue.submission(i)["accepted_results"] == 2]
        posts = [r for r in results if r["submission_id"] == twice]
        self.assertEqual([r["duplicate"] for r in posts], [False, True], posts)
        self.assertEqual((posts[1]["xqueue_header"], posts[1]["xqueue_body"]),
                         (posts[0]["xqueue_header"], posts[0]["xqueue_body"]), "the post after a lost reply is the same")
        self.assertEqual(posts[0]["body"]["score"], 1)
        self.assertEqual(self.watcher.output().count(f"submission {twice}: grading with"), 1, "graded once")
        [once] = [i for i in ids if i != twice]
        self.assertEqual(self.xqueue.submission(once)["accepted_results"], 1)
        self.assertEqual({r["body"]["score"] for r in results if r["submission_id"] == once}, {1})
        self.assert_nothing_left()

    def test_lost_reply_posts_the_same_result_again(self):
        self.xqueue.faults(lose_reply={"put_result": {"times": 1}})
        self.start_watcher()
        sid = self.submit()
        self.wait_accepted([sid], timeout=90)
        self.wait_delivered()
        posts = [r for r in self.xqueue.results() if r["submission_id"] == sid]
        self.assertEqual([r["duplicate"] for r in posts], [False, True], f"{posts}\n{self.log()}")
        self.assertEqual(posts[0]["xqueue_body"], posts[1]["xqueue_body"])
        self.assertEqual(posts[0]["key"], posts[1]["key"])
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 1, "posted again, not graded again")
        self.assertEqual([e["fault"] for e in self.put_results()], ["lose_reply", None])
        self.assert_nothing_left()

    def test_dropped_put_result_is_retried(self):
        self.xqueue.faults(drop={"put_result": {"times": 4}})
        self.start_watcher()
        ids = [self.submit() for _ in range(2)]
        self.assert_settled(ids)

    def test_incorrect_key_drops_the_result_and_the_requeued_submission_is_graded(self):
        self.xqueue.faults(incorrect_key={"times": 1})
        self.start_watcher()
        sid = self.submit()
        self.assert_settled([sid], timeout=self.PROCESSING_DELAY + 60)
        self.assertGreaterEqual(self.xqueue.submission(sid)["pulled_count"], 2, "requeued after the refused key")
        self.assertIn("refused the key", self.watcher.output())


class WatcherKilled(FaultTestCase):
    PROCESSING_DELAY = 60  # the journal, not XQueue's requeue, must bring the result

    def test_sigkill_mid_job_then_restart_regrades_from_the_journal(self):
        self.start_watcher()
        sid = self.submit(SLOW_RIGHT.format(seconds=5))
        self.wait_pulled(sid)
        grading = self.wait_grading_container()  # its job's container, not one waiting for a job
        self.watcher.stop(signal.SIGKILL)
        status, body = engine_request("GET", f"/containers/{grading}/json")
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["State"]["Running"], "the killed watcher's grading container runs on")
        self.assertTrue(self.journal_entries(), "the submission must be journalled")
        self.start_watcher()
        self.assert_settled([sid], timeout=50)
        self.assertEqual(engine_request("GET", f"/containers/{grading}/json")[0], 404,
                         "the orphan container is removed at start")
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 1, "graded from the journal, not a requeue")
        self.assertIn("left by an earlier run", self.watcher.output())
        self.assert_nothing_left()

    def test_a_container_an_earlier_run_created_late_is_removed_while_running(self):
        """A killed run's last container creation can finish after the next run's start-up sweep; the
        watcher finds it by its run label and removes it, and keeps its own."""
        self.start_watcher()
        self.xqueue.wait_for(lambda: containers_labelled(self.watcher_id), timeout=60, what="a container prepared")
        ours = {c["Id"] for c in containers_labelled(self.watcher_id)}
        status, body = engine_request("POST", "/containers/create", {
            "Image": GRADER_IMAGE, "Labels": {WATCHER_LABEL: self.watcher_id, SUBMISSION_LABEL: "precreated",
                                              "org.openedx.xqueue-watcher.run": "a-killed-run"}})
        self.assertEqual(status, 201, body)
        late = json.loads(body)["Id"]
        self.xqueue.wait_for(lambda: engine_request("GET", f"/containers/{late}/json")[0] == 404, timeout=30,
                             what="the earlier run's container removed")
        self.assertTrue(ours & {c["Id"] for c in containers_labelled(self.watcher_id)}, "its own prepared container stays")
        self.assertIn("left by an earlier run", self.watcher.output())
        sid = self.submit()
        self.assert_settled([sid])
        self.assert_nothing_left()

    def test_sigkill_with_an_unposted_result_then_restart_posts_it(self):
        self.xqueue.faults(drop={"put_result": True})
        self.start_watcher()
        sid = self.submit()
        self.xqueue.wait_for(lambda: "result kept in the journal" in self.watcher.output(), timeout=60,
                             what="the result journalled after failed posts")
        self.watcher.stop(signal.SIGKILL)
        self.xqueue.clear_faults()
        self.start_watcher()
        self.assert_settled([sid], timeout=30)
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 1)
        self.assert_nothing_left()


class EngineRestart(FaultTestCase):
    def test_engine_stopped_and_restarted_mid_job(self):
        if not os.path.exists(ENGINE_PID_FILE):
            self.fail(f"the engine was not started by scripts/engine ({ENGINE_PID_FILE} missing): "
                      "this test restarts it and cannot restart an engine it did not start")
        self.start_watcher()
        sid = self.submit(SLOW_RIGHT.format(seconds=4))
        self.wait_pulled(sid)
        self.wait_grading_container()  # the job runs in its container now
        with open(ENGINE_PID_FILE) as pid_file:
            pid = int(pid_file.read())
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
                time.sleep(0.2)
            except ProcessLookupError:
                break
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "engine")], check=True, timeout=120)
        self.assert_settled([sid], timeout=90)
        self.assertIsNone(self.watcher.process.poll(), "the watcher must survive the engine restart")
        later = self.submit()
        self.assert_settled([later])
        self.assert_nothing_left()



class FaultsDocTest(unittest.TestCase):
    """docs/reliability.md's faults tables (faults, then replicas) name only tests that exist, and every
    fault test is in it."""

    def test_the_faults_table_matches_the_tests(self):
        with open(os.path.join(SOURCE_DIR, "docs", "reliability.md"), encoding="utf-8") as doc:
            text = doc.read()
        section = text[text.index("## Faults (XQueue and engine)"):]
        rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line.split("|")[-2]]
        named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[-2])}
        sources = ""
        for module in ("test_faults.py", "test_watcher.py", "test_hostile.py", "test_replicas.py",
                       "test_behaviours.py", "test_registry.py"):
            with open(os.path.join(HERE, module), encoding="utf-8") as source:
                sources += source.read()
        for name in named:
            if os.path.exists(os.path.join(HERE, name + ".py")):
                continue  # a whole suite
            self.assertIsNotNone(re.search(rf"(def|class) {name}\b", sources), f"the doc names {name}, which no test defines")
        with open(__file__, encoding="utf-8") as this:
            own_tests = re.findall(r"def (test_\w+)", this.read())
        for test in own_tests:
            if test != "test_the_faults_table_matches_the_tests":
                self.assertIn(test, named, f"fault test {test} is missing from docs/reliability.md")

if __name__ == "__main__":
    unittest.main()
