"""Two watcher replicas on the same queues of one XQueue stand-in, as the chart runs them when it scales:
distinct `--watcher-id`s, each its own config root, job directory and journal (two pods), one engine.

* every submission is graded and posted once, and both replicas take a fair share;
* a grading that outlasts XQueue's processing delay is served to the other replica too, and only the post
  with the newest key counts;
* one replica SIGKILLed mid-grading loses nothing: XQueue re-serves its submission to the other one, and
  the killed one, restarted, removes its leftover containers and finds its stale journal entry refused;
* the queue-length gauge the chart's autoscalers read is XQueue's real queue length on every replica,
  and falls to 0 once the queues are drained.

Each replica only counts its own containers (the engine's label filter on its watcher id)."""
import os
import re
import shutil
import signal
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

from harness import (HERE, SOURCE_DIR, WatcherProcess, containers_labelled, engine_request, grading_containers,
                     require_engine_and_image, served_metrics_port, write_config_root, xqueue_standin)

COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
WRONG = "def square(x):\n    return x + x\n"
SLOW_RIGHT = "import time\ntime.sleep({seconds})\n" + RIGHT
METRICS_ARGS = ("--metrics-address", "127.0.0.1", "--metrics-port", "0")
# The metric the chart's HPA and KEDA ScaledObject read (helm/xqueue-watcher/values.yaml, autoscaling.metricName).
with open(os.path.join(SOURCE_DIR, "helm", "xqueue-watcher", "values.yaml"), encoding="utf-8") as values:
    AUTOSCALER_METRIC = re.search(r"^autoscaling:\n(?:  .*\n|\s*\n)*?  metricName: (\S+)", values.read(), re.M).group(1)
SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """{(name, frozenset of (label, value) pairs): value} from a watcher's /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError) as error:
        raise AssertionError(f"/metrics on port {port} did not answer: {error}")
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples[(match.group(1), frozenset(LABEL.findall(match.group(2) or "")))] = float(match.group(3))
    return samples


def metric(samples, name, **labels):
    """The value of one series; 0 when the watcher has not exported it (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def graded_in_log(output):
    """Submission ids a replica's log says it graded (finished a grading of), in order."""
    return [int(i) for i in re.findall(r"graded submission (\d+) in queue", output)]


def grading_in_log(output):
    """Submission ids a replica's log says it started grading (its job handed to a container)."""
    return [int(i) for i in re.findall(r"submission (\d+): grading with", output)]


def job_submission_text(container):
    """The `submission` file of a container's job directory (read through its bind mount), or None."""
    for mount in container.get("Mounts", []):
        if mount["Destination"].endswith("/job"):
            try:
                with open(os.path.join(mount["Source"], "submission"), encoding="utf-8") as source:
                    return source.read()
            except OSError:
                return None
    return None


class Replica:
    """One replica: its own config root (hence its own jobs/, journal/ and watcher.log) and watcher id."""

    def __init__(self, parent, name, port, queues, manager_extra):
        self.root = os.path.join(parent, name)
        os.makedirs(self.root)
        self.watcher_id = f"replica-{name}-{os.path.basename(parent)}"
        write_config_root(self.root, port, queues, requests_timeout="5s", shutdown_grace="60s",
                          manager_extra=manager_extra)
        self.process = None
        self.earlier_logs = ""  # the logs of runs before a restart

    def start(self):
        if self.process:
            self.earlier_logs += self.process.output()
        self.process = WatcherProcess(self.root, self.watcher_id, METRICS_ARGS)
        self.process.wait_ready()
        self.metrics_port = served_metrics_port(self.process)
        return self

    def output(self):
        return self.process.output() if self.process else ""

    def running(self):
        return self.process is not None and self.process.process.poll() is None

    def journal(self):
        journal = os.path.join(self.root, "journal")
        return sorted(f for f in os.listdir(journal) if f.endswith(".json")) if os.path.isdir(journal) else []

    def jobs(self):
        jobs = os.path.join(self.root, "jobs")
        return os.listdir(jobs) if os.path.isdir(jobs) else []


class ReplicaTestCase(unittest.TestCase):
    PROCESSING_DELAY = 300
    QUEUES = {}
    MANAGER_EXTRA = ""
    WAITING_PER_REPLICA = 0  # containers each replica prepares ahead (one per connection)

    def setUp(self):
        require_engine_and_image(self)
        self.tmp = tempfile.mkdtemp(prefix="xqw-replicas-")
        self.standin = xqueue_standin.XQueueStandin(
            xqueue_standin.StandinConfig(port=0, users={"lms": "secret-pw"}, processing_delay=self.PROCESSING_DELAY,
                                         queues=list(self.QUEUES), verbose=False))
        self.standin.start()
        self.xqueue = self.standin.client()
        self.a = Replica(self.tmp, "a", self.standin.port, self.QUEUES, self.MANAGER_EXTRA)
        self.b = Replica(self.tmp, "b", self.standin.port, self.QUEUES, self.MANAGER_EXTRA)

    def tearDown(self):
        try:
            for replica in (self.a, self.b):
                if replica.process and not replica.process.log.closed:  # not stopped by the test
                    replica.process.stop(signal.SIGKILL)
        finally:
            self.standin.stop()
            for replica in (self.a, self.b):
                for container in containers_labelled(replica.watcher_id):
                    engine_request("DELETE", f"/containers/{container['Id']}?force=1")
            shutil.rmtree(self.tmp, ignore_errors=True)

    def wait(self, predicate, timeout, what, interval=0.1):
        """Until predicate() is true, else fail naming `what`, with both replicas' logs."""
        deadline = time.time() + timeout
        while not predicate():
            if time.time() > deadline:
                self.fail(f"not within {timeout}s: {what}{self.logs()}")
            time.sleep(interval)

    def logs(self):
        return "".join(f"\n--- replica {r.watcher_id}:\n{(r.earlier_logs + r.output())[-4000:]}" for r in (self.a, self.b))

    def start_both(self):
        """Both replicas started and warm (each with its containers prepared ahead), so that neither has a
        head start on the queue."""
        self.a.start()
        self.b.start()
        for replica in (self.a, self.b):
            self.wait(
                lambda: sum(c["State"] == "running" for c in containers_labelled(replica.watcher_id))
                >= self.WAITING_PER_REPLICA, timeout=120,
                what=f"replica {replica.watcher_id} with its {self.WAITING_PER_REPLICA} containers prepared ahead")

    def submit(self, queue, response):
        return self.xqueue.submit(queue, student_response=response, grader_payload={"grader": "square/grader.py"})

    def wait_all_answered(self, ids, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.xqueue.submission(i)["accepted_results"] >= 1 for i in ids):
                return
            for replica in (self.a, self.b):
                # A replica the test stopped has its log closed; any other one must keep running.
                if replica.process and not replica.process.log.closed and replica.process.process.poll() is not None:
                    self.fail(f"replica {replica.watcher_id} exited ({replica.process.process.returncode}){self.logs()}")
            time.sleep(0.2)
        missing = [i for i in ids if self.xqueue.submission(i)["accepted_results"] < 1]
        self.fail(f"no result within {timeout}s for submissions {missing}{self.logs()}")

    def wait_idle(self, replica, timeout=120):
        """Until the replica has nothing left to post: no job in flight, nothing in its journal (so a second
        post, if the watcher were to make one, would already have arrived)."""
        def idle():
            samples = scrape(replica.metrics_port)
            in_flight = sum(v for (name, _), v in samples.items() if name == "xqueue_watcher_jobs_in_flight")
            return in_flight == 0 and not replica.journal()
        self.wait(idle, timeout=timeout, interval=0.2, what=f"replica {replica.watcher_id} idle")

    def assert_one_result_each(self, expected_scores):
        for sid, score in expected_scores.items():
            state = self.xqueue.submission(sid)
            results = [r for r in self.xqueue.results() if r["submission_id"] == sid]
            self.assertEqual(state["accepted_results"], 1, f"submission {sid}: {state}{self.logs()}")
            self.assertEqual([r["duplicate"] for r in results], [False], f"submission {sid}: {results}")
            self.assertEqual(results[0]["body"]["score"], score, f"submission {sid}: {results[0]['body']}")

    def assert_nothing_left_after_stopping(self):
        for replica in (self.a, self.b):
            self.assertTrue(replica.running(), f"replica {replica.watcher_id} is not running{self.logs()}")
            self.assertEqual(replica.process.stop(signal.SIGTERM), 0, self.logs())
        for replica in (self.a, self.b):
            self.assertEqual([(c["Labels"], c["State"]) for c in containers_labelled(replica.watcher_id)], [],
                             f"containers of {replica.watcher_id} left after both replicas stopped")
            self.assertEqual(replica.jobs(), [], f"job directories of {replica.watcher_id} left")
            self.assertEqual(replica.journal(), [], f"journal entries of {replica.watcher_id} left")


class SharedQueueTest(ReplicaTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 2, "limits": {"timeout": "60s"}}}
    MANAGER_EXTRA = "max_running_containers: 2\n"
    WAITING_PER_REPLICA = 2
    COUNT = 30

    def test_every_submission_is_graded_and_posted_once_and_both_replicas_share_the_work(self):
        self.start_both()
        expected = {}
        for n in range(self.COUNT):
            right = n % 3 != 2  # two right answers for each wrong one
            expected[self.submit("course", RIGHT if right else WRONG)] = 1 if right else 0
        self.wait_all_answered(list(expected), timeout=600)
        for replica in (self.a, self.b):
            self.wait_idle(replica)
        self.assert_one_result_each(expected)

        # Every pull the stand-in served went to one of the two replicas; each result it accepted was
        # posted by exactly one of them (the watchers' own counters, not timing).
        pulled = sum(self.xqueue.submission(i)["pulled_count"] for i in expected)
        accepted, pulls = {}, 0
        for replica in (self.a, self.b):
            samples = scrape(replica.metrics_port)
            accepted[replica.watcher_id] = metric(samples, "xqueue_watcher_submissions_posted_total",
                                                  queue="course", outcome="accepted")
            pulls += metric(samples, "xqueue_watcher_submissions_pulled_total", queue="course")
        self.assertEqual(pulls, pulled, "pulls counted by the replicas and served by XQueue differ")
        self.assertEqual(sum(accepted.values()), self.COUNT, f"accepted posts per replica: {accepted}")
        for watcher_id, count in accepted.items():
            self.assertGreaterEqual(count, self.COUNT / 4, f"replica {watcher_id} did too little: {accepted}")

        # Their logs agree: each submission served once was graded by one replica only.
        graded_a, graded_b = set(graded_in_log(self.a.output())), set(graded_in_log(self.b.output()))
        self.assertEqual(graded_a | graded_b, set(expected), self.logs())
        served_once = {i for i in expected if self.xqueue.submission(i)["pulled_count"] == 1}
        self.assertEqual(graded_a & graded_b & served_once, set(), "graded by both replicas")
        self.assertEqual(len(graded_a), accepted[self.a.watcher_id])
        self.assert_nothing_left_after_stopping()


class ServedTwiceTest(ReplicaTestCase):
    """A grading that outlasts XQueue's processing delay: XQueue serves the submission again, with a new key,
    to the other replica; both grade it, and only the post with the newest key is counted."""
    PROCESSING_DELAY = 8
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "60s"}}}
    WAITING_PER_REPLICA = 1

    def test_a_submission_served_to_both_replicas_gets_one_result(self):
        self.start_both()
        # Every run of this submission ends at the same moment, 12 s from now: the first holder is past the
        # processing delay (8 s) by then, and the second one (pulled at about 8 s) posts before a third pull
        # (possible from about 16 s) can take the key from it.
        until = time.time() + 12
        sid = self.submit("course", f"import time\ntime.sleep(max(0, {until} - time.time()))\n" + RIGHT)
        self.wait(lambda: self.xqueue.submission(sid)["pulled_count"] >= 2, timeout=60,
                  what=f"submission {sid} served again after the processing delay")
        self.wait_all_answered([sid], timeout=120)
        for replica in (self.a, self.b):
            self.wait_idle(replica)
        state = self.xqueue.submission(sid)
        self.assertEqual(state["pulled_count"], 2, f"served more than twice: {state}{self.logs()}")
        self.assert_one_result_each({sid: 1})
        self.assertEqual(state["rejected_put_results"], 1, "the first holder's post with the old key")
        # Each replica graded it once: one post accepted, the other refused for its old key.
        outcomes = {}
        for replica in (self.a, self.b):
            self.assertEqual(graded_in_log(replica.output()), [sid], f"replica {replica.watcher_id}{self.logs()}")
            samples = scrape(replica.metrics_port)
            outcomes[replica.watcher_id] = tuple(
                metric(samples, "xqueue_watcher_submissions_posted_total", queue="course", outcome=outcome)
                for outcome in ("accepted", "incorrect_key"))
        self.assertEqual(sorted(outcomes.values()), [(0, 1), (1, 0)], f"posts (accepted, incorrect_key): {outcomes}")
        self.assert_nothing_left_after_stopping()


class KilledReplicaTest(ReplicaTestCase):
    PROCESSING_DELAY = 15  # XQueue's re-serve delay, short so that the killed replica's job comes back soon
    QUEUES = {"course": {"grader_root": COURSE, "connections": 2, "limits": {"timeout": "60s"}}}
    MANAGER_EXTRA = "max_running_containers: 2\n"
    WAITING_PER_REPLICA = 2
    COUNT = 12

    def test_sigkill_of_one_replica_mid_grading_loses_nothing(self):
        self.start_both()
        tokens = {}
        for _ in range(self.COUNT):
            token = uuid.uuid4().hex
            tokens[token] = self.submit("course", f"# {token}\n" + SLOW_RIGHT.format(seconds=3))

        def a_grading():
            """A submission replica a logged "grading with" whose container is running with its job."""
            started = set(grading_in_log(self.a.output()))
            for container in grading_containers(self.a.watcher_id):
                text = job_submission_text(container) or ""
                for token, sid in tokens.items():
                    if token in text and sid in started:
                        return sid, container["Id"]
            return None
        found = None
        deadline = time.time() + 180
        while not found and time.time() < deadline:
            found = a_grading()
            time.sleep(0.05)
        self.assertIsNotNone(found, "replica a never graded a submission in a running container" + self.logs())
        victim, victim_container = found
        self.a.process.stop(signal.SIGKILL)
        orphans = {c["Id"] for c in containers_labelled(self.a.watcher_id)}
        self.assertIn(victim_container, orphans, "the killed replica's grading container should be left")
        self.assertTrue(self.a.journal(), "the killed replica's submission must be in its journal")
        self.assertEqual(self.xqueue.submission(victim)["accepted_results"], 0, "posted before the kill?")

        # Replica b alone finishes everything, the victim once XQueue re-serves it.
        self.wait_all_answered(list(tokens.values()), timeout=self.PROCESSING_DELAY + 300)
        self.assertGreaterEqual(self.xqueue.submission(victim)["pulled_count"], 2, "the victim was not re-served")
        self.assertIn(victim, graded_in_log(self.b.output()), "replica b did not grade the re-served submission")
        self.wait_idle(self.b)
        self.assert_one_result_each({sid: 1 for sid in tokens.values()})

        # The killed replica restarts as a pod's container does (same watcher id, same journal): it
        # removes the containers its first run left, grades its journalled submission again and finds the
        # key refused (XQueue gave the submission to b meanwhile), so no second result is counted.
        self.a.start()
        self.assertIn(f"left by an earlier run of {self.a.watcher_id}", self.a.output())
        left = {c["Id"] for c in containers_labelled(self.a.watcher_id)}
        self.assertEqual(orphans & left, set(), "the restarted replica kept its first run's containers")
        self.wait(lambda: "refused the key" in self.a.output(), timeout=120,
                             what="the restarted replica's stale post refused")
        self.wait_idle(self.a)
        self.assertGreaterEqual(self.xqueue.submission(victim)["rejected_put_results"], 1)
        self.assert_one_result_each({sid: 1 for sid in tokens.values()})
        self.assert_nothing_left_after_stopping()


class QueueLengthSignalTest(ReplicaTestCase):
    """The chart's HPA and KEDA ScaledObject read `xqueue_watcher_queue_length` (autoscaling.metricName);
    KEDA's default query is sum(max by (queue) (...)) over the pods."""
    QUEUES = {"alpha": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "90s"}},
              "beta": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "90s"}}}
    MANAGER_EXTRA = "max_running_containers: 2\n"
    WAITING_PER_REPLICA = 2
    WAITING = {"alpha": 5, "beta": 3}

    def gauges(self):
        """{watcher id: {queue: the autoscalers' metric}}."""
        return {r.watcher_id: {q: metric(scrape(r.metrics_port), AUTOSCALER_METRIC, queue=q)
                               for q in self.QUEUES} for r in (self.a, self.b)}

    def standin_waiting(self):
        return {q: v["waiting"] for q, v in self.xqueue.queues().items()}

    def test_every_replica_reports_xqueues_queue_length_and_it_falls_to_zero(self):
        self.start_both()
        # Busy replicas: each of the four connections (two queues, two replicas) holds a slow grading,
        # so the submissions below wait at XQueue.
        blockers = [self.submit(q, SLOW_RIGHT.format(seconds=40)) for q in self.QUEUES for _ in range(2)]
        for sid in blockers:
            self.wait(lambda: self.xqueue.submission(sid)["pulled_count"] >= 1, timeout=120,
                                 what=f"blocker {sid} pulled")
        waiting = [self.submit(q, RIGHT) for q, n in self.WAITING.items() for _ in range(n)]

        # Both gauges equal the stand-in's queue length (checked on both sides of the scrape), within one
        # refresh interval (15 s) and slack for a loaded machine.
        seen = None
        deadline = time.time() + 45
        while time.time() < deadline:
            before, gauges, after = self.standin_waiting(), self.gauges(), self.standin_waiting()
            self.assertEqual(before, self.WAITING, "the blockers ended before the gauges were read" + self.logs())
            if before == after and all(g == before for g in gauges.values()):
                seen = gauges
                break
            time.sleep(0.5)
        self.assertIsNotNone(seen, f"gauges {self.gauges()} never matched XQueue's {self.WAITING}" + self.logs())
        keda = sum(max(g[q] for g in seen.values()) for q in self.QUEUES)  # KEDA's default query
        self.assertEqual(keda, sum(self.WAITING.values()))

        self.wait_all_answered(blockers + waiting, timeout=300)
        self.wait(lambda: all(v == 0 for g in self.gauges().values() for v in g.values()),
                             timeout=45, interval=0.5, what="every replica's queue-length gauge back to 0")
        self.assertEqual(self.standin_waiting(), {q: 0 for q in self.QUEUES})
        self.assert_one_result_each({sid: 1 for sid in blockers + waiting})
        self.assert_nothing_left_after_stopping()


if __name__ == "__main__":
    unittest.main()
