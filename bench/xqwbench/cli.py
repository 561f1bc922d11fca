"""bench/run: options, preflight, the runs in order, the report."""
import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, List, Optional

from . import procfs, report
from .configroot import check_config, precreate_supported, write_config_root
from .engine import Engine, EngineError
from .jobs import EXERCISES, build_jobs, flood_jobs
from .runs import BenchError, RunResult, Standin, pooled, run_floor, run_flood, run_idle, run_watcher, watcher_env

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_IMAGE = "xqueue-watcher/python-grader:latest"
FLOORS = ("api", "grader", "docker-run", "true", "one-interpreter")
DEFAULT_FLOORS = ("api", "grader", "docker-run")
DEFAULT_STDERR_CAP = 256 * 1024  # config::Limits' stderr default; the bench leaves it unchanged


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmarks the watcher against the engine's own floor in one run; prints a table and "
                    "ratio lines (watcher / floor). See docs/performance.md.")
    parser.add_argument("--n", type=int, default=None, help="submissions (default 30; 1000 with --scale)")
    parser.add_argument("--connections", type=int, default=1, help="connections per queue (default 1)")
    parser.add_argument("--queues", type=int, default=1, help="queues the submissions are spread over (default 1)")
    parser.add_argument("--precreate", choices=("default", "started", "created", "off", "on"), default="default",
                        help="per-queue `precreate:` in the watcher's YAML (on = started); default leaves the key out")
    parser.add_argument("--timeout", default="5s", help="the queues' limits.timeout (default 5s)")
    parser.add_argument("--runtime", default="", help="the queues' limits.runtime, e.g. runsc (default: engine's)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"grader image (default {DEFAULT_IMAGE})")
    parser.add_argument("--exercise", choices=tuple(EXERCISES), default="demo",
                        help="the exercise set whose samples are queued: demo (examples/demo-course, seven "
                             "exercises) or trivial (bench/trivial-course, one five-test double(x)); the "
                             "specials are written for the same set (default demo)")
    parser.add_argument("--no-specials", action="store_true",
                        help="leave out the time-out, memory and 200 MB output submissions")
    parser.add_argument("--floors", default=",".join(DEFAULT_FLOORS),
                        help="floors to measure, comma-separated: api, grader, docker-run, true (the api "
                             "floor's container running /bin/true), one-interpreter (the same container "
                             "grading in one python3), or none (default api,grader,docker-run)")
    parser.add_argument("--floor-concurrency", type=int, default=1, metavar="K",
                        help="jobs every floor runs at once, each on its own engine connection (default 1)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repetitions of watcher + floors, alternating which goes first; ratio lines are "
                             "medians over them (default 1)")
    parser.add_argument("--floor-n", type=int, default=None,
                        help="floor jobs: the first K of the same list (default all; 105 with --scale)")
    parser.add_argument("--idle-seconds", type=float, default=60,
                        help="idle test length, 10 queues configured (default 60; 0 skips it)")
    parser.add_argument("--idle-queues", type=int, default=10, help="queues in the idle test (default 10)")
    parser.add_argument("--max-running", type=int, default=None, metavar="N",
                        help="the watcher's max_running_containers (default: not set, the engine host's CPU count)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="watcher poll_interval in s (default 1)")
    parser.add_argument("--output-flood", type=int, default=8, metavar="K",
                        help="submissions whose container prints 200 MiB (default 8; 0 skips)")
    parser.add_argument("--flood-connections", type=int, default=4, help="connections in the flood run (default 4)")
    parser.add_argument("--scale", action="store_true",
                        help="scale mode: 1000 submissions, no specials, floors on a 105-job sample, "
                             "first vs last hundred")
    parser.add_argument("--standin-nagle", action="store_true",
                        help="run the stand-in as it is, Nagle on: each get_submission reply then waits ~40 ms "
                             "for a delayed ACK (default: TCP_NODELAY, as nginx in front of XQueue)")
    parser.add_argument("--watcher", default=None, help="watcher binary (default $XQW_BINARY or build/xqueue-watcher)")
    parser.add_argument("--floor-driver", default=None,
                        help="floor driver (default bench/xqw-bench-floor next to the watcher's build)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (config roots, logs)")
    args = parser.parse_args(argv)
    if args.n is None:
        args.n = 1000 if args.scale else 30
    if args.scale and args.floor_n is None:
        args.floor_n = 105
    args.specials = not (args.no_specials or args.scale)
    args.floors = [] if args.floors == "none" else [f.strip() for f in args.floors.split(",") if f.strip()]
    for floor in args.floors:
        if floor not in FLOORS:
            parser.error(f"unknown floor '{floor}' (choose from {', '.join(FLOORS)}, or none)")
    for name in ("n", "connections", "queues", "idle_queues", "flood_connections", "repeat", "floor_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def locate_binaries(args):
    """The watcher and the floor driver; builds them when the default build directory lacks them."""
    default_watcher = os.path.join(SOURCE_DIR, "build", "xqueue-watcher")
    watcher = os.path.abspath(args.watcher or os.environ.get("XQW_BINARY") or default_watcher)
    driver = os.path.abspath(args.floor_driver or os.path.join(os.path.dirname(watcher), "bench", "xqw-bench-floor"))
    missing = [p for p in (watcher, driver) if not os.access(p, os.X_OK)]
    if missing and watcher == default_watcher and not args.floor_driver:
        print("bench: building the watcher and the floor driver in build/", file=sys.stderr)
        subprocess.run(["cmake", "-S", SOURCE_DIR, "-B", os.path.join(SOURCE_DIR, "build"), "-G", "Ninja"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["ninja", "-C", os.path.join(SOURCE_DIR, "build"), "-j2", "xqueue-watcher", "xqw-bench-floor"],
                       check=True)
        missing = [p for p in (watcher, driver) if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError("missing " + ", ".join(missing) + " (build first: cmake -S . -B build -G Ninja && ninja -C build)")
    return watcher, driver


def background_load(seconds: float = 1.0) -> float:
    """Cores busy before the benchmark starts (others share this machine)."""
    before = procfs.machine_cpu()
    time.sleep(seconds)
    return (procfs.machine_cpu() - before).busy / seconds


def queue_settings(args, grader_root: str, connections: int) -> dict:
    limits = {"timeout": args.timeout}
    if args.runtime:
        limits["runtime"] = args.runtime
    settings = {"connections": connections, "grader_root": grader_root, "image": args.image,
                "pull_policy": "never", "limits": limits}
    if args.precreate != "default":
        settings["precreate"] = PRECREATE_VALUES[args.precreate]
    return settings


PRECREATE_VALUES = {"on": True, "started": "started", "created": "created", "off": False}


def headline(args, machine: dict, load: float, precreate_note: str) -> list:
    mix = f"{args.n} submissions of {EXERCISES[args.exercise].course}"
    if args.specials:
        mix += " (samples in turn + one time-out, one memory hog, one 200 MB output)"
    return [
        f"xqueue-watcher benchmark: {mix}",
        f"watcher: {args.queues} queue(s) x {args.connections} connection(s), poll_interval {args.poll_interval:g}s, "
        f"limits.timeout {args.timeout}, runtime {args.runtime or machine['default_runtime']}, "
        f"precreate {precreate_note}, max_running_containers "
        f"{args.max_running if args.max_running is not None else 'not set'}; XQueue stand-in with Nagle {'on' if args.standin_nagle else 'off'}; "
        f"floors {args.floor_concurrency} job(s) at once",
        f"machine: {os.cpu_count()} CPUs, Linux {platform.release()}, Docker {machine['version']} "
        f"(cgroup v{machine['cgroup_version']}, {machine['storage_driver']}); "
        f"busy before the run: {load:.2f} cores (shared machine)",
    ]


def precreate_note(args, binary: str, scratch: str) -> str:
    if args.precreate == "default":
        return "not set (watcher default)"
    complaint = precreate_supported(binary, scratch, watcher_env(), PRECREATE_VALUES[args.precreate])
    if complaint is None:
        return args.precreate
    if args.precreate != "off":
        raise BenchError(f"--precreate {args.precreate}: this watcher's config does not accept a per-queue `precreate` key yet "
                         f"(check-config says: {complaint.splitlines()[0]})")
    args.precreate = "default"  # `off` is what a watcher without pre-create does anyway
    return "off (the watcher has no pre-create yet; key left out)"


def parse_seconds(text: str) -> float:
    """The few duration forms --timeout takes: "5s", "500ms", "2m", "5"."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


@dataclasses.dataclass
class Bench:
    """Everything the phases share."""
    args: argparse.Namespace
    run_id: str
    scratch: str
    engine: Engine
    watcher_binary: str = ""
    driver: str = ""
    standin: Optional[Standin] = None
    course: str = ""  # the exercise set's course directory (set from --exercise)
    flood_course: str = os.path.realpath(os.path.join(SOURCE_DIR, "bench", "flood-course"))
    stall_s: float = 120.0
    ids: List[str] = dataclasses.field(default_factory=list)  # every watcher id used: cleaned up at the end

    def __post_init__(self):
        if not self.course:
            self.course = os.path.realpath(os.path.join(SOURCE_DIR, EXERCISES[self.args.exercise].course))

    def jobs(self) -> list:
        """A fresh copy of the submissions every runner grades."""
        return build_jobs(self.course, self.args.n, self.args.specials, EXERCISES[self.args.exercise].specials)

    def new_id(self, name: str) -> str:
        self.ids.append(f"bench-{self.run_id}-{name}")
        return self.ids[-1]

    def config_root(self, name: str, queues: Dict[str, dict]) -> str:
        root = os.path.join(self.scratch, name)
        write_config_root(root, self.standin.port, queues, poll_interval=f"{self.args.poll_interval:g}s",
                          max_running=self.args.max_running)
        return root


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run_id = uuid.uuid4().hex[:8]
    bench = Bench(args, run_id, tempfile.mkdtemp(prefix=f"xqw-bench-{run_id}-"), Engine())
    try:
        print("\n".join(run_all(bench)))
        return 0
    except (BenchError, EngineError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    finally:
        clean_up(bench)


def run_all(bench: Bench) -> List[str]:
    args = bench.args
    bench.watcher_binary, bench.driver = locate_binaries(args)
    try:
        machine = bench.engine.describe()
    except EngineError as error:
        raise BenchError(f"{error} (scripts/engine starts one)") from None
    if not bench.engine.has_image(args.image):
        raise BenchError(f"image {args.image} is missing (scripts/images builds it)")
    note = precreate_note(args, bench.watcher_binary, bench.scratch)
    try:
        bench.jobs()  # refuses an impossible mix before anything starts
    except ValueError as error:
        raise BenchError(str(error)) from None
    timeout_s = parse_seconds(args.timeout)
    bench.stall_s = max(120.0, 4 * timeout_s)
    load = background_load()
    bench.standin = Standin(SOURCE_DIR, bench.scratch, processing_delay=max(600.0, 10 * timeout_s),
                            nagle=args.standin_nagle)

    queues = [f"bench-{i}" for i in range(args.queues)]
    root = bench.config_root("watcher", {q: queue_settings(args, bench.course, args.connections) for q in queues})
    problem = check_config(bench.watcher_binary, root, watcher_env())
    if problem:
        raise BenchError("the benchmark's config root is refused:\n" + problem)
    repetitions = [measure(bench, rep, root, queues) for rep in range(args.repeat)]
    watcher = pooled([runs["watcher"] for runs in repetitions])
    floors = {m: pooled([runs[m] for runs in repetitions]) for m in args.floors}
    idle = measure_idle(bench) if args.idle_seconds > 0 else None
    flood = measure_flood(bench) if args.output_flood > 0 else None

    runs = [watcher] + [floors[m] for m in args.floors]
    lines = headline(args, machine, load, note) + [""] + report.table(runs)
    lines += [""] + report.watcher_phase_lines(watcher) + report.client_phase_lines(runs)
    lines += report.idle_lines(idle) if idle else []
    lines += report.flood_lines(flood) if flood else []
    for run in runs:
        lines += [f"{run.name}: error: {e}" for e in run.errors]
        lines += [f"{run.name}: score mismatch: {k}" for k in run.mismatched_kinds()]
    values = report.median_lines([report.comparisons(r["watcher"], {m: r[m] for m in args.floors}, args.scale)
                                  for r in repetitions])
    values.update(report.totals(watcher, idle, flood, [floors[m] for m in args.floors]))
    heading = "ratios:" if args.repeat == 1 else f"ratios (medians over {args.repeat} repetitions):"
    lines += ["", heading] + report.ratio_lines(values)
    if args.json:
        write_json(args.json, bench, machine, load, runs, values, idle, flood)
    return lines


def measure(bench: Bench, rep: int, root: str, queues: List[str]) -> Dict[str, RunResult]:
    """One repetition: the watcher drains fresh copies of the jobs, each floor runs them (--floor-concurrency
    at once). Odd repetitions run the floors first, so neither side always gets the warmer machine."""
    args = bench.args
    jobs = bench.jobs()
    floor_jobs = jobs[: args.floor_n] if args.floor_n else jobs

    def watcher_run():
        print(f"bench: watcher draining {len(jobs)} submissions ...", file=sys.stderr)
        return run_watcher(bench.watcher_binary, bench.engine, bench.standin, root, bench.new_id(f"{rep}-watcher"),
                           jobs, queues, bench.stall_s, track_rss=args.scale)

    def floor_run(mode):
        at_once = "one at a time" if args.floor_concurrency == 1 else f"{args.floor_concurrency} at a time"
        print(f"bench: floor '{mode}' running {len(floor_jobs)} jobs {at_once} ...", file=sys.stderr)
        return run_floor(bench.driver, bench.engine, mode, root, queues[0], floor_jobs, bench.scratch,
                         bench.new_id(f"{rep}-{mode}"), args.floor_concurrency)

    runs = {}
    if rep % 2 == 0:
        runs["watcher"] = watcher_run()
    for mode in args.floors:
        runs[mode] = floor_run(mode)
    if "watcher" not in runs:
        runs["watcher"] = watcher_run()
    return runs


def measure_idle(bench: Bench):
    args = bench.args
    print(f"bench: idle watcher, {args.idle_queues} queues, {args.idle_seconds:g} s ...", file=sys.stderr)
    queues = [f"idle-{i}" for i in range(args.idle_queues)]
    root = bench.config_root("idle", {q: queue_settings(args, bench.course, 1) for q in queues})
    return run_idle(bench.watcher_binary, bench.engine, bench.standin, root, bench.new_id("idle"), queues,
                    args.idle_seconds, args.poll_interval)


def measure_flood(bench: Bench):
    args = bench.args
    print(f"bench: output flood, {args.output_flood} containers, {args.flood_connections} connections ...",
          file=sys.stderr)
    root = bench.config_root("flood", {"flood": queue_settings(args, bench.flood_course, args.flood_connections)})
    return run_flood(bench.watcher_binary, bench.engine, bench.standin, root, bench.new_id("flood"),
                     flood_jobs(bench.flood_course, args.output_flood), "flood", args.flood_connections,
                     bench.stall_s, stderr_cap_bytes=DEFAULT_STDERR_CAP)


def clean_up(bench: Bench) -> None:
    if bench.standin:
        bench.standin.stop()
    for watcher_id in bench.ids:
        try:
            bench.engine.remove_labelled(watcher_id)
        except EngineError:
            pass
    if bench.args.keep:
        print(f"bench: scratch kept in {bench.scratch}", file=sys.stderr)
    else:
        shutil.rmtree(bench.scratch, ignore_errors=True)


def write_json(path, bench, machine, load, runs, values, idle, flood):
    document = {
        "options": vars(bench.args),
        "watcher_ids": bench.ids,
        "machine": dict(machine, background_cores_busy=load),
        "runs": {run.name: report.run_metrics(run) for run in runs},
        "ratios": values,
        "idle": dataclasses.asdict(idle) if idle else None,
        "flood": dataclasses.asdict(flood) if flood else None,
    }
    with open(path, "w") as out:
        json.dump(document, out, indent=2)
