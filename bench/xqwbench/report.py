"""The table and the ratio lines (pure: plain data in, text out)."""
import re
from typing import Dict, List, Optional, Sequence

from .runs import FloodResult, IdleResult, RunResult
from .stats import hundred_blocks, median, percentile, ratio, ratio_over_floor

# Engine-event phases of one container, in order, with the report's names. "run" is when the container
# began on the job: its start, or its job signal when it was started before the submission (pre-start).
# A phase that began before the job itself (pre-create, pre-start) is off the critical path and not counted.
PHASES = (
    ("before create", None, "create"),
    ("create -> start", "create", "start"),
    ("start or job signal -> exit", "run", "die"),
    ("exit -> done", "die", None),
    ("exit -> removed", "die", "destroy"),
)
RATIO_LINE = re.compile(r"^[a-z][a-z0-9_]*: -?[0-9]+(\.[0-9]+)?$")


def ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1000


def event_time(job, name: Optional[str], default: float) -> Optional[float]:
    if name is None:
        return default
    if name == "run":
        return job.lifecycle.get("job", job.lifecycle.get("start"))
    return job.lifecycle.get(name)


def phase_values(run: RunResult, start: Optional[str], end: Optional[str]) -> List[float]:
    """Each job's time from event `start` to event `end` (None: the job's begin or end), for the jobs where
    both came after the job began (a container prepared ahead did that part off the critical path)."""
    values = []
    for job in run.jobs:
        begin = event_time(job, start, job.begin)
        finish = event_time(job, end, job.end)
        if begin is not None and finish is not None and min(begin, finish) >= job.begin - 0.002:
            values.append(finish - begin)
    return values


def result_to_next_pull(run: RunResult) -> List[float]:
    """For each pull after the first: how long after the latest earlier result it came (the watcher only)."""
    ends = sorted(j.end for j in run.jobs)
    gaps = []
    for begin in sorted(j.begin for j in run.jobs)[1:]:
        earlier = [e for e in ends if e <= begin]
        if earlier:
            gaps.append(begin - earlier[-1])
    return gaps


def watcher_phase_lines(watcher: RunResult) -> List[str]:
    """What the engine's events cannot show: XQueue's reply to the watcher's log line, that line to the
    container's creation, and a posted result to the next pull."""
    parts = [("start-up (exec -> first pull)", watcher.startup_s),
             ("pulled -> grading logged", median(phase_values(watcher, None, "received"))),
             ("grading logged -> container created", median(phase_values(watcher, "received", "create"))),
             ("result posted -> next pull", median(result_to_next_pull(watcher)))]
    shown = [f"{label} {fmt(ms(value), 1)}" for label, value in parts if value is not None]
    return [f"watcher p50 (ms): " + ", ".join(shown)] if shown else []


def max_running(run: RunResult) -> Optional[int]:
    """The most containers grading at once (engine start, or job signal for a container started before its
    job, to die), from the events. Containers waiting for a job use no CPU and are not counted."""
    edges = []
    for job in run.jobs:
        began = event_time(job, "run", job.begin)
        if began is not None and "die" in job.lifecycle:
            edges += [(began, 1), (job.lifecycle["die"], -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # a die before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak if edges else None


def run_metrics(run: RunResult) -> Dict[str, Optional[float]]:
    latencies = [j.end - j.queued for j in run.jobs]
    service = [j.end - j.begin for j in run.jobs]
    wall = run.wall_s
    metrics = {
        "submissions": run.n,
        "wall_s": wall,
        "throughput_per_s": ratio(run.n, wall),
        "per_submission_ms": ms(ratio(wall, run.n)),
        "latency_p50_ms": ms(percentile(latencies, 0.5)),
        "latency_p95_ms": ms(percentile(latencies, 0.95)),
        "latency_max_ms": ms(max(latencies, default=None)),
        "service_p50_ms": ms(percentile(service, 0.5)),
        "service_p95_ms": ms(percentile(service, 0.95)),
        "process_cpu_s": run.process_cpu_s,
        "process_cpu_per_submission_ms": ms(ratio(run.process_cpu_s, run.n)),
        "peak_rss_mib": run.peak_rss_kib / 1024,
        "machine_cpu_s": run.cpu.machine.busy,
        "cpu_submissions": run.cpu_n,
        "machine_cpu_per_submission_s": ratio(run.cpu.machine.busy, run.cpu_n),
        "grading_cpu_per_submission_s": ratio(run.cpu.graders, run.cpu_n),
        "machine_busy_fraction": ratio(run.cpu.machine.busy, run.cpu.machine.total),
        "engine_cpu_per_submission_ms": ms(ratio(run.cpu.engine, run.cpu_n)),
        "containers_cpu_per_submission_ms": ms(ratio(run.cpu.containers, run.cpu_n)),
        "harness_cpu_per_submission_ms": ms(ratio(run.cpu.harness, run.cpu_n)),
        "score_mismatches": run.mismatches(),
        "lost": run.lost,
        "max_running": max_running(run),
    }
    for label, start, end in PHASES:
        metrics["phase " + label] = ms(median(phase_values(run, start, end)))
    return metrics


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}f}"


def number(value: float) -> str:
    """A ratio line's value: enough digits to compare runs, never exponent notation."""
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


TABLE_ROWS = (
    ("submissions", "submissions", 0),
    ("wall time (s)", "wall_s", 2),
    ("throughput (submissions/s)", "throughput_per_s", 3),
    ("time per submission (ms)", "per_submission_ms", 0),
    ("submit -> result p50 (ms)", "latency_p50_ms", 0),
    ("submit -> result p95 (ms)", "latency_p95_ms", 0),
    ("submit -> result max (ms)", "latency_max_ms", 0),
    ("one job, begun -> done p50 (ms)", "service_p50_ms", 0),
    ("one job, begun -> done p95 (ms)", "service_p95_ms", 0),
    ("containers grading at once (max)", "max_running", 0),
) + tuple((f"  {label} p50 (ms)", "phase " + label, 1) for label, _, _ in PHASES) + (
    ("process CPU (s)", "process_cpu_s", 2),
    ("process CPU per submission (ms)", "process_cpu_per_submission_ms", 1),
    ("process peak RSS (MiB)", "peak_rss_mib", 1),
    ("machine CPU (s, all cores)", "machine_cpu_s", 2),
    ("  submissions it covers", "cpu_submissions", 0),
    ("machine CPU per submission (s)", "machine_cpu_per_submission_s", 3),
    ("machine busy (share of all cores)", "machine_busy_fraction", 2),
    ("  engine daemons' share (ms)", "engine_cpu_per_submission_ms", 0),
    ("  containers' share (ms)", "containers_cpu_per_submission_ms", 0),
    ("  harness' share (ms)", "harness_cpu_per_submission_ms", 0),
    ("grading CPU per submission (s)", "grading_cpu_per_submission_s", 3),
    ("score mismatches (vs expected.json)", "score_mismatches", 0),
    ("lost submissions", "lost", 0),
)


def table(runs: Sequence[RunResult]) -> List[str]:
    metrics = [run_metrics(run) for run in runs]
    width = max(len(label) for label, _, _ in TABLE_ROWS) + 2
    columns = [max(12, len(run.name) + 2) for run in runs]
    lines = ["".ljust(width) + "".join(run.name.rjust(c) for run, c in zip(runs, columns))]
    for label, key, digits in TABLE_ROWS:
        if label.startswith("  before create"):
            lines.append("container phases, engine events:")
        lines.append(label.ljust(width) + "".join(fmt(m[key], digits).rjust(c) for m, c in zip(metrics, columns)))
    return lines


def client_phase_lines(runs: Sequence[RunResult]) -> List[str]:
    """The driver's own per-call timings (p50) for each floor."""
    lines = []
    for run in runs:
        names = []
        for job in run.jobs:
            names += [n for n in job.client_phases_ms if n not in names]
        if not names:
            continue
        parts = [f"{n} {fmt(median([j.client_phases_ms[n] for j in run.jobs if n in j.client_phases_ms]), 1)}"
                 for n in names]
        lines.append(f"{run.name} calls p50 (ms): " + ", ".join(parts))
    return lines


def comparisons(watcher: RunResult, floors: Dict[str, RunResult], scale: bool = False) -> Dict[str, float]:
    """One repetition's ratio lines: watcher ÷ floor unless the name says otherwise; what cannot be
    computed is left out."""
    out: Dict[str, Optional[float]] = {}
    w = run_metrics(watcher)
    for key, name in (("api", "api_floor"), ("grader", "grader_path"), ("docker-run", "docker_run")):
        if key in floors:
            out[f"per_submission_vs_{name}"] = ratio(w["per_submission_ms"], run_metrics(floors[key])["per_submission_ms"])
    api = floors.get("api")
    if api is not None:
        f = run_metrics(api)
        api_by_index = {j.index: j.end - j.begin for j in api.jobs}
        overhead = [(j.end - j.begin) - api_by_index[j.index] for j in watcher.jobs if j.index in api_by_index]
        out["p50_latency_overhead_ms"] = ms(median(overhead))
        out["p50_service_vs_api_floor_container"] = ratio(w["service_p50_ms"], f["service_p50_ms"])
        out["throughput_vs_api_floor"] = ratio(w["throughput_per_s"], f["throughput_per_s"])
        out["machine_cpu_per_submission_vs_api_floor"] = ratio(w["grading_cpu_per_submission_s"],
                                                              f["grading_cpu_per_submission_s"])
    out.update(reference_comparisons(w, floors))
    # 1.0: every core busy, so more connections cannot add throughput (the CPU ceiling).
    out["watcher_machine_busy_fraction"] = w["machine_busy_fraction"]
    out["p50_result_to_next_pull_ms"] = ms(median(result_to_next_pull(watcher)))
    out["watcher_cpu_ms_per_submission"] = w["process_cpu_per_submission_ms"]
    out["watcher_peak_rss_mib"] = w["peak_rss_mib"]
    if scale:
        blocks = hundred_blocks([j.end for j in watcher.jobs])
        if blocks:
            out["scale_time_per_submission_last_vs_first_hundred"] = ratio(blocks[1], blocks[0])
        rss = rss_hundreds(watcher.rss_by_done, watcher.n)
        if rss:
            out["scale_rss_last_vs_first_hundred"] = ratio(rss[1], rss[0])
    return {name: value for name, value in out.items() if value is not None}


def reference_comparisons(w: Dict[str, Optional[float]], floors: Dict[str, RunResult]) -> Dict[str, Optional[float]]:
    """The watcher (its metrics `w`) against the one-interpreter reference, and with the true floor, the
    machine CPU each adds above the engine's own cost per container."""
    reference = floors.get("one-interpreter")
    if reference is None:
        return {}
    r = run_metrics(reference)
    cpu = "grading_cpu_per_submission_s"
    out = {"throughput_vs_one_interpreter": ratio(w["throughput_per_s"], r["throughput_per_s"]),
           "machine_cpu_per_submission_vs_one_interpreter": ratio(w[cpu], r[cpu])}
    if "true" in floors:
        out["container_cpu_over_true_floor_vs_one_interpreter"] = ratio_over_floor(
            w[cpu], r[cpu], run_metrics(floors["true"])[cpu])
    return out


def median_lines(repetitions: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Each ratio line's median over the repetitions (in the order the lines first appear)."""
    names: List[str] = []
    for values in repetitions:
        names += [n for n in values if n not in names]
    return {n: median([values[n] for values in repetitions if n in values]) for n in names}


def totals(watcher: RunResult, idle: Optional[IdleResult] = None,
           flood: Optional[FloodResult] = None, floors: Sequence[RunResult] = ()) -> Dict[str, float]:
    """Counts over every repetition (the watcher's, then all floors' together), and the idle and flood
    figures."""
    out: Dict[str, float] = {"lost_submissions": watcher.lost, "duplicate_results": watcher.duplicates,
                             "score_mismatches": watcher.mismatches()}
    if floors:
        out["floor_lost_submissions"] = sum(floor.lost for floor in floors)
        out["floor_score_mismatches"] = sum(floor.mismatches() for floor in floors)
    if idle is not None:
        out["idle_cpu_percent"] = idle.cpu_percent
        out["idle_polls_per_queue_per_interval"] = idle.polls_per_queue_per_interval_max
    if flood is not None:
        out["flood_peak_rss_mib"] = flood.peak_rss_kib / 1024
        out["flood_lost_submissions"] = flood.lost
    return out


def rss_hundreds(samples: Sequence[tuple], n: int, block: int = 100):
    """Mean RSS while the first `block` results came in, and while the last `block` did."""
    first = [rss for done, rss in samples if done < block]
    last = [rss for done, rss in samples if n - block <= done < n]
    if not first or not last:
        return None
    return sum(first) / len(first), sum(last) / len(last)


def ratio_lines(values: Dict[str, float]) -> List[str]:
    return [f"{name}: {number(value)}" for name, value in values.items()]


def idle_lines(idle: IdleResult) -> List[str]:
    gap = "-" if idle.min_gap_after_empty_s is None else f"{idle.min_gap_after_empty_s:.3f} s"
    return [f"idle: {idle.queues} queues, {idle.seconds:.1f} s, poll interval {idle.poll_interval_s:g} s: "
            f"watcher CPU {idle.cpu_percent:.3f} % of one core; polls per queue per interval "
            f"max {idle.polls_per_queue_per_interval_max:.2f}, mean {idle.polls_per_queue_per_interval_mean:.2f}; "
            f"shortest gap after an empty reply {gap}"]


def flood_lines(flood: FloodResult) -> List[str]:
    return [f"output flood: {flood.submissions} containers each printing 200 MiB to stderr (cap "
            f"{flood.stderr_cap_bytes // 1024} KiB), {flood.connections} connections: watcher peak RSS "
            f"{flood.peak_rss_kib / 1024:.1f} MiB, drained in {flood.wall_s:.1f} s, {flood.lost} lost"]
