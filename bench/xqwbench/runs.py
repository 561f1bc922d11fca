"""The runs bench/run makes: the watcher draining the stand-in, the floors (the same jobs through the
driver, one at a time or --floor-concurrency at once), the idle watcher, and the output flood. Each
returns plain data for the report."""
import dataclasses
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from . import procfs
from .engine import Engine, lifecycles
from .jobs import Job, score_matches

PASSWORD = "bench-pw"


@functools.lru_cache(maxsize=1)
def _engine_daemon_pids() -> tuple:
    return tuple(procfs.engine_daemon_pids())


def cpu_snapshot(harness_pids: List[int] = ()) -> procfs.CpuSnapshot:
    return procfs.cpu_snapshot(list(_engine_daemon_pids()), list(harness_pids))


class BenchError(RuntimeError):
    pass


@dataclasses.dataclass
class JobOutcome:
    index: int                # position in the job list (the same job in every runner)
    kind: str
    queued: float             # wall seconds: submitted (watcher) or the driver's start (floors)
    begin: float              # pulled (watcher) or begun (floors)
    end: float                # result accepted by XQueue (watcher) or done (floors)
    score: Optional[float]
    expected: Optional[float]
    verdict: str
    lifecycle: Dict[str, float] = dataclasses.field(default_factory=dict)  # engine event times
    client_phases_ms: Dict[str, float] = dataclasses.field(default_factory=dict)  # driver-measured


@dataclasses.dataclass
class RunResult:
    name: str
    jobs: List[JobOutcome]
    process_cpu_s: float
    peak_rss_kib: int
    cpu: procfs.CpuSnapshot   # machine, engine daemons and containers over the run (or its steady part)
    cpu_submissions: Optional[int] = None  # submissions `cpu` covers; None: all of them
    startup_s: Optional[float] = None
    lost: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: List[str] = dataclasses.field(default_factory=list)
    rss_by_done: List[tuple] = dataclasses.field(default_factory=list)  # (results so far, RSS KiB)

    wall_s: float = 0.0       # first begin -> last end; pooled runs add theirs up

    def __post_init__(self):
        if not self.wall_s and self.jobs:
            self.wall_s = max(j.end for j in self.jobs) - min(j.begin for j in self.jobs)

    @property
    def n(self) -> int:
        return len(self.jobs)

    @property
    def cpu_n(self) -> int:
        return self.n if self.cpu_submissions is None else self.cpu_submissions

    def mismatches(self) -> int:
        return len(self.mismatched_kinds())

    def mismatched_kinds(self) -> List[str]:
        return [f"{j.kind} (got {j.score}, expected {j.expected})" for j in self.jobs
                if not score_matches(j.expected, j.score)]


def pooled(runs: List[RunResult]) -> RunResult:
    """Several repetitions of one runner as one: jobs, times, CPU and losses added up, peaks the highest."""
    first = runs[0]
    cpu = first.cpu
    for run in runs[1:]:
        cpu = cpu + run.cpu
    startups = [r.startup_s for r in runs if r.startup_s is not None]
    return RunResult(first.name, [j for r in runs for j in r.jobs], sum(r.process_cpu_s for r in runs),
                     max(r.peak_rss_kib for r in runs), cpu, sum(r.cpu_n for r in runs),
                     startup_s=sum(startups) / len(startups) if startups else None,
                     lost=sum(r.lost for r in runs), duplicates=sum(r.duplicates for r in runs),
                     rejected=sum(r.rejected for r in runs), errors=[e for r in runs for e in r.errors],
                     rss_by_done=first.rss_by_done, wall_s=sum(r.wall_s for r in runs))


# ---- the stand-in -------------------------------------------------------------------------------------
class Standin:
    """tests/xqueue_standin as a child process (its CPU stays out of ours), driven over its control API."""

    def __init__(self, source_dir: str, scratch: str, processing_delay: float, nagle: bool = False):
        sys.path.insert(0, os.path.join(source_dir, "tests"))
        import xqueue_standin  # noqa: E402 (the project's stand-in; standard library only)
        port_file = os.path.join(scratch, "standin.port")
        self.log = open(os.path.join(scratch, "standin.log"), "wb")
        # bench/standin.py: the same stand-in with TCP_NODELAY (see there for why).
        program = ("tests", "xqueue_standin") if nagle else ("bench", "standin.py")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(source_dir, *program), "--port", "0",
             "--port-file", port_file, "--user", f"lms:{PASSWORD}", "--processing-delay",
             str(processing_delay), "--quiet"], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.client = xqueue_standin.StandinClient.from_port_file(port_file, wait=15)
            self.client.timeout = 60
            self.port = int(self.client.base_url.rsplit(":", 1)[1])
            self.client.health()
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def submit(self, queue: str, job: Job) -> int:
        return self.client.submit(queue, student_response=job.student_response,
                                  grader_payload={"grader": job.grader},
                                  student_info={"anonymous_student_id": f"bench-{job.index}",
                                                "submission_time": time.strftime("%Y%m%d%H%M%S"),
                                                "random_seed": job.seed})

    def done(self, queues: List[str]) -> int:
        summary = self.client.queues()
        return sum(summary.get(q, {}).get("done", 0) for q in queues)


# ---- the watcher --------------------------------------------------------------------------------------
class Watcher:
    def __init__(self, binary: str, config_root: str, watcher_id: str, log_level: str = "info"):
        self.watcher_id = watcher_id
        self.log_path = os.path.join(config_root, "watcher.log")
        self.log = open(self.log_path, "wb")
        self.started = time.time()
        self.process = subprocess.Popen(
            [binary, "-d", config_root, "--watcher-id", watcher_id, "--log-level", log_level],
            stdout=self.log, stderr=subprocess.STDOUT, env=watcher_env())
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise BenchError("the watcher did not stop within 90 s of SIGTERM:\n" + self.tail())
        finally:
            self.log.close()


def watcher_env() -> dict:
    from .configroot import PASSWORD_VARIABLE
    return dict(os.environ, **{PASSWORD_VARIABLE: PASSWORD})


def wait_for_results(standin: Standin, watcher: Watcher, queues: List[str], n: int, stall_s: float,
                     on_sample=None, done_before: int = 0) -> None:
    """Until `n` more results are in; fails when the watcher dies or nothing completes for `stall_s`."""
    last_done, last_progress = -1, time.monotonic()
    interval = 0.1 if n <= 50 else 0.2  # each look costs the stand-in ~1 ms of CPU
    while True:
        if not watcher.alive():
            raise BenchError(f"the watcher exited ({watcher.process.returncode}):\n{watcher.tail()}")
        done = standin.done(queues) - done_before
        if on_sample:
            on_sample(done)
        if done >= n:
            return
        if done != last_done:
            last_done, last_progress = done, time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            raise BenchError(f"{done} of {n} results, none for {stall_s:.0f} s; watcher log:\n{watcher.tail()}")
        time.sleep(interval)


def run_watcher(binary: str, engine: Engine, standin: Standin, config_root: str, watcher_id: str,
                jobs: List[Job], queues: List[str], stall_s: float, track_rss: bool = False) -> RunResult:
    done_before = standin.done(queues)  # an earlier repetition's results stay in the stand-in
    for job in jobs:
        job.submission_id = standin.submit(queues[job.index % len(queues)], job)
    harness = [standin.process.pid]
    cpu_before = cpu_snapshot(harness)
    watcher = Watcher(binary, config_root, watcher_id)
    rss_by_done: List[tuple] = []
    steady: Dict[str, object] = {}

    def sample(done: int):
        if track_rss and watcher.alive():
            rss_by_done.append((done, procfs.process_rss_kib(watcher.pid)))
        if not steady and steady_from(len(jobs)) <= done < len(jobs):
            steady.update(cpu=cpu_snapshot(harness), done=done)

    try:
        wait_for_results(standin, watcher, queues, len(jobs), stall_s, sample, done_before)
        cpu = procfs.process_cpu(watcher.pid)
        peak = procfs.process_peak_rss_kib(watcher.pid)
        used = cpu_snapshot(harness) - steady.get("cpu", cpu_before)
    finally:
        watcher.stop()
    return collect_watcher_run("watcher", engine, standin, watcher, jobs, cpu, peak, used, rss_by_done,
                               cpu_submissions=len(jobs) - steady.get("done", 0))


def steady_from(n: int) -> int:
    """Results after which the watcher's machine CPU is counted: its start (the image check, the first
    containers prepared ahead) is behind it, and from there each submission's container is replaced by
    the next one prepared ahead, as in a long run. The last results' replacements are counted too. (When
    no look at the results fell between this and the last one, the whole run is counted.)"""
    return max(1, n // 10)


def collect_watcher_run(name, engine, standin, watcher, jobs, cpu, peak, used, rss_by_done,
                        cpu_submissions=None) -> RunResult:
    by_id = {job.submission_id: job for job in jobs}
    submissions = {s["submission_id"]: s for s in standin.client.submissions() if s["submission_id"] in by_id}
    accepted = [r for r in standin.client.results() if r["submission_id"] in by_id]
    rejected = [r for r in standin.client.rejected() if r.get("submission_id") in by_id]
    received, container_of, delivered = grading_log(watcher.log_path)
    events = lifecycles(engine.events(watcher.watcher_id, watcher.started - 1, time.time()), container_of)
    outcomes, seen = [], set()
    for result in accepted:
        if result["duplicate"] or result["submission_id"] in seen:
            continue
        seen.add(result["submission_id"])
        job, state = by_id[result["submission_id"]], submissions[result["submission_id"]]
        body = result.get("body") or {}
        outcomes.append(JobOutcome(
            job.index, job.kind, queued=state["arrival_time"], begin=state["last_pull_time"],
            end=result["time"], score=body.get("score"), expected=job.expected_score,
            verdict="correct" if body.get("correct") else "incorrect",
            lifecycle=job_lifecycle(events.get(str(job.submission_id), {}), job.submission_id, received,
                                    delivered)))
    first_pull = min((s["last_pull_time"] for s in submissions.values() if s["last_pull_time"]), default=None)
    return RunResult(name, outcomes, cpu, peak, used, cpu_submissions,
                     startup_s=(first_pull - watcher.started) if first_pull else None,
                     lost=len(jobs) - len(seen), duplicates=sum(1 for r in accepted if r["duplicate"]),
                     rejected=len(rejected), rss_by_done=rss_by_done)


def job_lifecycle(events: Dict[str, float], submission_id: int, received: Dict[int, float],
                  delivered: Dict[int, float]) -> Dict[str, float]:
    """A job's engine events plus, from the log, when grading began ("received") and, for a container woken
    through its FIFO, when the job reached it ("job", as the job signal's event gives it otherwise)."""
    lifecycle = dict(events)
    if submission_id in received:
        lifecycle["received"] = received[submission_id]
    if "job" not in lifecycle and submission_id in delivered:
        lifecycle["job"] = delivered[submission_id]
    return lifecycle


GRADING_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) .*?\] submission (\d+): grading with ")


GRADED_LINE = re.compile(r" graded submission (\d+) .*\bcontainer=([0-9a-f]+)")
# Jobs that reach their container without an engine call: a byte into its FIFO, or none needed (its
# supervisor had not yet looked for job.json).
DELIVERY_FIELDS = re.compile(r"\bprepare_ms=([0-9.]+) .*\bstart_ms=([0-9.]+) .*\bjob_delivery=(?:fifo|job-file)\b")


def grading_log(log_path: str) -> Tuple[Dict[int, float], Dict[str, str], Dict[int, float]]:
    """From the watcher's text log: submission id -> when it logged that it starts grading it (local time,
    ms), which splits XQueue's reply from the container's part; submission id (text) -> the id prefix of
    the container that graded it (containers made before their submission carry no submission label); and
    submission id -> when a waiting container got its job through its FIFO or found it by itself (grading
    logged + the job directory's write + the wake-up), which leaves no engine event as the job signal does. All are empty
    if the log format differs."""
    started: Dict[int, float] = {}
    container_of: Dict[str, str] = {}
    delivered: Dict[int, float] = {}
    with open(log_path, errors="replace") as log:
        for line in log:
            match = GRADING_LINE.match(line)
            if match:
                stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000
                started[int(match.group(3))] = stamp
            graded = GRADED_LINE.search(line)
            if graded:
                container_of[graded.group(1)] = graded.group(2)
                fifo = DELIVERY_FIELDS.search(line)
                if fifo and int(graded.group(1)) in started:
                    submission = int(graded.group(1))
                    delivered[submission] = started[submission] + (float(fifo.group(1)) + float(fifo.group(2))) / 1000
    return started, container_of, delivered


# ---- the floors -----------------------------------------------------------------------------------------
FLOOR_NAMES = {"api": "api floor", "grader": "grader path", "docker-run": "docker run", "true": "true floor",
               "one-interpreter": "one interpreter"}
# Floors whose container grades nothing (/bin/true): no score to compare with expected.json.
SCORELESS_FLOORS = frozenset({"true"})


def run_floor(driver: str, engine: Engine, mode: str, config_root: str, queue: str, jobs: List[Job],
              scratch: str, watcher_id: str, concurrency: int = 1) -> RunResult:
    jobs_path = os.path.join(scratch, f"jobs-{mode}.json")
    with open(jobs_path, "w") as out:
        json.dump([job.floor_entry() for job in jobs], out)
    cpu_before = cpu_snapshot()
    started = time.time()
    stderr_path = os.path.join(scratch, f"floor-{mode}.stderr")
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([driver, "-d", config_root, "--queue", queue, "--mode", mode, "--jobs", jobs_path,
                                    "--watcher-id", watcher_id, "--concurrency", str(concurrency)],
                                   stdout=subprocess.PIPE, stderr=stderr, env=watcher_env())
        # VmHWM belongs to the exec'd driver (ru_maxrss would also count the forked Python before exec).
        lines, peak_kib = [], 0
        for line in process.stdout:
            lines.append(line.decode())
            try:
                peak_kib = max(peak_kib, procfs.process_peak_rss_kib(process.pid))
            except OSError:
                pass
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    used = cpu_snapshot() - cpu_before
    with open(stderr_path, errors="replace") as stderr:
        driver_stderr = stderr.read()[-2000:]
    by_id = {job.index + 1: job for job in jobs}
    events = lifecycles(engine.events(watcher_id, started - 1, time.time()))
    outcomes, errors = [], []
    for line in lines:  # in the order the jobs ended: with concurrency that is not the list's
        record = json.loads(line)
        if "error" in record:
            errors.append(f"{record['submission_id']} ({record.get('kind')}): {record['error']}")
            continue
        job = by_id[record["submission_id"]]
        outcomes.append(JobOutcome(
            job.index, job.kind, queued=started, begin=record["begin_unix_us"] / 1e6,
            end=record["end_unix_us"] / 1e6, score=record["score"],
            expected=None if mode in SCORELESS_FLOORS else job.expected_score,
            verdict=record["verdict"], lifecycle=events.get(str(record["submission_id"]), {}),
            client_phases_ms={name: us / 1000 for name, us in record["phases_us"]}))
    if process.returncode not in (0, 1) or not outcomes:
        raise BenchError(f"the floor driver ({mode}) failed with exit code {process.returncode}:\n{driver_stderr}")
    cpu = usage.ru_utime + usage.ru_stime  # includes the docker CLI processes it waited for
    return RunResult(FLOOR_NAMES[mode], outcomes, cpu, peak_kib, used,
                     lost=len(jobs) - len(outcomes), errors=errors)


# ---- idle -------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class IdleResult:
    queues: int
    seconds: float
    poll_interval_s: float
    cpu_percent: float
    polls_per_queue_per_interval_max: float
    polls_per_queue_per_interval_mean: float
    min_gap_after_empty_s: Optional[float]


def run_idle(binary: str, engine: Engine, standin: Standin, config_root: str, watcher_id: str, queues: List[str],
             seconds: float, poll_interval_s: float) -> IdleResult:
    standin.client.config(queues=queues)
    watcher = Watcher(binary, config_root, watcher_id)
    try:
        deadline = time.monotonic() + 30
        while True:  # every queue polled once: start-up (login, image check) is over
            if not watcher.alive():
                raise BenchError(f"the idle watcher exited:\n{watcher.tail()}")
            polled = standin.client.requests(log=False)["by_queue"].get("get_submission", {})
            if all(polled.get(q, 0) > 0 for q in queues):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the idle watcher did not poll every queue within 30 s:\n{watcher.tail()}")
            time.sleep(0.05)
        wait_until_settled(engine, watcher_id)  # ... and so is preparing each connection's next container
        cpu_before, begin = procfs.process_cpu(watcher.pid), time.time()
        time.sleep(seconds)
        cpu_after, end = procfs.process_cpu(watcher.pid), time.time()
    finally:
        watcher.stop()
    log = standin.client.requests(log=True)["log"]
    rates = [polls_per_interval(times, begin, end, poll_interval_s) for times in poll_times(log, queues).values()]
    return IdleResult(len(queues), end - begin, poll_interval_s, 100 * (cpu_after - cpu_before) / (end - begin),
                      max(rates), sum(rates) / len(rates), min_gap_after_empty(log, queues))


def wait_until_settled(engine: Engine, watcher_id: str, quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
    """Returns once the watcher's containers (ids and states) have not changed for `quiet_s`."""
    last, since, end = None, time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < end:
        now = sorted((c["Id"], c["State"]) for c in engine.containers(watcher_id))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.2)


def poll_times(log: List[dict], queues: List[str]) -> Dict[str, List[float]]:
    times: Dict[str, List[float]] = {q: [] for q in queues}
    for entry in log:
        if entry["endpoint"] == "get_submission" and entry["queue"] in times:
            times[entry["queue"]].append(entry["time"])
    return times


def polls_per_interval(times: List[float], begin: float, end: float, interval: float) -> float:
    """One queue's polls per poll interval over [begin, end): from the mean gap between its polls there
    (with the last poll before `begin`), so a short window does not round the rate down to whole polls."""
    inside = sorted(t for t in times if begin <= t < end)
    before = [t for t in times if t < begin]
    series = ([max(before)] if before else []) + inside
    if len(series) < 2:
        return len(inside) * interval / (end - begin)
    return interval * (len(series) - 1) / (series[-1] - series[0])


def min_gap_after_empty(log: List[dict], queues: List[str]) -> Optional[float]:
    """The shortest time from an empty get_submission reply to the same queue's next poll."""
    last_empty: Dict[str, float] = {}
    gaps = []
    for entry in log:
        queue = entry["queue"]
        if entry["endpoint"] != "get_submission" or queue not in queues:
            continue
        if queue in last_empty:
            gaps.append(entry["time"] - last_empty.pop(queue))
        if entry["return_code"] == 1:
            last_empty[queue] = entry["time"]
    return min(gaps, default=None)


# ---- output flood --------------------------------------------------------------------------------------
@dataclasses.dataclass
class FloodResult:
    submissions: int
    connections: int
    peak_rss_kib: int
    wall_s: float
    stderr_cap_bytes: int
    lost: int


def run_flood(binary: str, engine: Engine, standin: Standin, config_root: str, watcher_id: str, jobs: List[Job],
              queue: str, connections: int, stall_s: float, stderr_cap_bytes: int) -> FloodResult:
    result = run_watcher(binary, engine, standin, config_root, watcher_id, jobs, [queue], stall_s)
    return FloodResult(len(jobs), connections, result.peak_rss_kib, result.wall_s, stderr_cap_bytes, result.lost)
