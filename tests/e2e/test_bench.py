"""The benchmark never rots: a tiny bench/run (5 submissions, idle 2 s, a small output flood) prints its
table and its ratio lines, well-formed, and leaves no container behind; a second tiny run measures the
true floor and the one-interpreter reference on the trivial exercise, two jobs at once. The measured
numbers are printed, never asserted (these machines are shared and noisy). The benchmark's own arithmetic
is checked on fixed inputs below."""
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BINARY, SOURCE_DIR, containers_labelled, require_engine_and_image

sys.path.insert(0, os.path.join(SOURCE_DIR, "bench"))

from xqwbench import callseq, engine, jobs, procfs, report, runs, stats  # noqa: E402

RUNNERS = ("watcher", "api floor", "grader path", "docker run")
REFERENCE_RUNNERS = ("watcher", "api floor", "true floor", "one interpreter")
REFERENCE_LINES = ("container_cpu_over_true_floor_vs_one_interpreter", "throughput_vs_one_interpreter",
                   "machine_cpu_per_submission_vs_one_interpreter")
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def table_row(lines, header, label):
    """The values of the table row `label` (under `header`), as text."""
    table = lines[lines.index(header) + 1:]
    row = next((line for line in table if line.strip().startswith(label)), None)
    if row is None:
        raise AssertionError(f"row '{label}' missing")
    return row[row.index(label) + len(label):].split()


def run_bench(cls, name, *options):
    """bench/run with `options` (and --json into a scratch directory), its output kept on `cls`."""
    require_engine_and_image(cls())
    cls.scratch = tempfile.mkdtemp(prefix="xqw-bench-test-")
    cls.json_path = os.path.join(cls.scratch, "bench.json")
    started = time.monotonic()
    cls.result = subprocess.run([os.path.join(SOURCE_DIR, "bench", "run"), "--watcher", BINARY, *options,
                                 "--json", cls.json_path], capture_output=True, text=True, timeout=600)
    cls.elapsed = time.monotonic() - started
    cls.lines = cls.result.stdout.splitlines()
    print(f"\n--- bench/run ({name}) took {cls.elapsed:.1f} s ---\n{cls.result.stdout}", file=sys.stderr)


class TinyBenchRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        run_bench(cls, "tiny", "--n", "5", "--timeout", "2s", "--idle-seconds", "2", "--output-flood", "4")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, f"bench/run failed:\n{self.result.stdout}\n{self.result.stderr}")

    def section(self, heading_prefix):
        start = next(i for i, line in enumerate(self.lines) if line.startswith(heading_prefix))
        block = []
        for line in self.lines[start + 1:]:
            if not line.strip():
                break
            block.append(line)
        return block

    def test_the_table_has_a_column_per_runner_and_every_row_filled_with_numbers(self):
        header = next(line for line in self.lines if all(name in line for name in RUNNERS))
        positions = [header.index(name) for name in RUNNERS]
        self.assertEqual(positions, sorted(positions), header)
        rows = {label.strip(): label for label, _, _ in report.TABLE_ROWS}
        table = self.lines[self.lines.index(header) + 1:]
        for label in rows:
            line = next((line for line in table if line.strip().startswith(label)), None)
            self.assertIsNotNone(line, f"row '{label}' missing")
            values = line[len(rows[label]):].split()
            self.assertEqual(len(values), len(RUNNERS), line)
            for value in values:
                self.assertTrue(NUMBER.match(value) or value == "-", f"'{value}' in row '{label}'")
        # The submissions row is a count: the same 5 for every runner.
        submissions = next(line for line in table if line.startswith("submissions"))
        self.assertEqual(submissions.split()[1:], ["5"] * len(RUNNERS))

    def test_ratio_lines_are_name_colon_number(self):
        block = self.section("ratios")
        self.assertTrue(block, "no ratio lines")
        for line in block:
            self.assertRegex(line, report.RATIO_LINE)
        names = {line.split(":")[0] for line in block}
        for expected in ("per_submission_vs_api_floor", "per_submission_vs_grader_path",
                         "per_submission_vs_docker_run", "p50_latency_overhead_ms", "machine_cpu_per_submission_vs_api_floor",
                         "watcher_peak_rss_mib", "lost_submissions", "idle_cpu_percent",
                         "idle_polls_per_queue_per_interval", "flood_peak_rss_mib"):
            self.assertIn(expected, names)

    def test_nothing_is_lost_duplicated_or_mis_scored(self):
        # Counts, not timings: whatever the machine's load, each must be 0.
        printed = {line.split(": ")[0]: float(line.split(": ")[1]) for line in self.section("ratios")}
        for count in ("lost_submissions", "duplicate_results", "score_mismatches"):
            self.assertIn(count, printed)
            self.assertEqual(printed[count], 0, f"{count} in:\n" + self.result.stdout[-3000:])

    def test_the_watcher_phases_from_its_log_are_printed(self):
        line = next((line for line in self.lines if line.startswith("watcher p50 (ms): ")), None)
        self.assertIsNotNone(line, "no watcher phase line: has the watcher's 'grading with' log line changed?")
        self.assertIn("pulled -> grading logged", line)

    def test_idle_and_flood_summaries_are_printed(self):
        self.assertTrue(any(line.startswith("idle: 10 queues") for line in self.lines), self.result.stdout)
        self.assertTrue(any(line.startswith("output flood: 4 containers") for line in self.lines), self.result.stdout)

    def test_the_json_holds_the_printed_ratios(self):
        with open(self.json_path) as source:
            document = json.load(source)
        printed = {line.split(": ")[0]: float(line.split(": ")[1]) for line in self.section("ratios")}
        self.assertEqual(set(printed), set(document["ratios"]))
        for name, value in printed.items():
            self.assertAlmostEqual(value, document["ratios"][name], delta=abs(value) * 0.01 + 0.001, msg=name)
        self.assertEqual(set(document["runs"]), set(RUNNERS))

    def test_no_container_is_left_behind(self):
        with open(self.json_path) as source:
            watcher_ids = json.load(source)["watcher_ids"]
        self.assertTrue(watcher_ids)
        for watcher_id in watcher_ids:
            self.assertEqual(containers_labelled(watcher_id), [], watcher_id)


class TinyReferenceRun(unittest.TestCase):
    """`--floors api,true,one-interpreter --floor-concurrency 2 --exercise trivial`: the table has a column
    for each, the reference lines are printed, nothing is lost or mis-scored, no floor runs more than two
    containers at once."""

    @classmethod
    def setUpClass(cls):
        run_bench(cls, "tiny, references", "--exercise", "trivial", "--n", "6", "--no-specials", "--connections",
                  "2", "--floors", "api,true,one-interpreter", "--floor-concurrency", "2", "--idle-seconds", "0",
                  "--output-flood", "0")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, f"bench/run failed:\n{self.result.stdout}\n{self.result.stderr}")
        self.header = next(line for line in self.lines if all(name in line for name in REFERENCE_RUNNERS))

    def ratios(self):
        start = next(i for i, line in enumerate(self.lines) if line.startswith("ratios"))
        block = [line for line in self.lines[start + 1:] if line.strip()]
        for line in block:
            self.assertRegex(line, report.RATIO_LINE)
        return {line.split(": ")[0]: float(line.split(": ")[1]) for line in block}

    def test_the_table_has_the_reference_columns_and_the_trivial_exercise(self):
        self.assertEqual(table_row(self.lines, self.header, "submissions"), ["6"] * len(REFERENCE_RUNNERS))
        self.assertIn("bench/trivial-course", self.result.stdout)

    def test_the_reference_lines_are_printed_as_numbers(self):
        printed = self.ratios()
        for name in REFERENCE_LINES:
            self.assertIn(name, printed, self.result.stdout[-3000:])
        with open(self.json_path) as source:
            document = json.load(source)
        for name in REFERENCE_LINES:
            self.assertIsInstance(document["ratios"][name], (int, float), name)
        self.assertEqual(set(document["runs"]), set(REFERENCE_RUNNERS))

    def test_nothing_is_lost_or_mis_scored_by_any_runner(self):
        printed = self.ratios()
        for count in ("lost_submissions", "duplicate_results", "score_mismatches", "floor_lost_submissions",
                      "floor_score_mismatches"):
            self.assertEqual(printed.get(count), 0, f"{count} in:\n" + self.result.stdout[-3000:])
        for label in ("score mismatches (vs expected.json)", "lost submissions"):
            self.assertEqual(table_row(self.lines, self.header, label), ["0"] * len(REFERENCE_RUNNERS), label)
        self.assertFalse([line for line in self.lines if ": error: " in line or "score mismatch:" in line])

    def test_no_floor_grades_more_containers_at_once_than_its_concurrency(self):
        # A bound, not a timing: two workers can never have three containers between start and exit.
        for value in table_row(self.lines, self.header, "containers grading at once (max)")[1:]:
            self.assertLessEqual(int(value), 2)

    def test_no_container_is_left_behind(self):
        with open(self.json_path) as source:
            for watcher_id in json.load(source)["watcher_ids"]:
                self.assertEqual(containers_labelled(watcher_id), [], watcher_id)


class EngineCallsRun(unittest.TestCase):
    """bench/engine-calls, one container per sequence: a figure for each sequence, nothing left behind."""

    def test_prints_a_figure_per_sequence_and_leaves_no_container(self):
        require_engine_and_image(self)
        result = subprocess.run([os.path.join(SOURCE_DIR, "bench", "engine-calls"), "--rounds", "1",
                                 "--per-round", "1"], capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        print(f"\n--- bench/engine-calls ---\n{result.stdout}", file=sys.stderr)
        lines = result.stdout.splitlines()
        self.assertIn("daemons' CPU per container", lines[0])
        rows = {line[:line.index("  ")]: line.split()[-3:] for line in lines[1:]}
        self.assertEqual(set(rows), set(callseq.SEQUENCES), result.stdout)
        for values in rows.values():
            self.assertTrue(all(NUMBER.match(value) for value in values), values)
        self.assertEqual(containers_labelled(callseq.LABEL_VALUE), [])


class BenchArithmetic(unittest.TestCase):
    """The benchmark's pure parts on fixed inputs."""

    def test_engine_call_figures_are_median_min_max_per_sequence(self):
        figures = callseq.Figures({"a b": [3.0, 1.0, 2.0], "longer name": [5.0]})
        self.assertEqual(figures.lines()[1:], ["a b             2.0    1.0    3.0",
                                               "longer name     5.0    5.0    5.0"])

    def test_percentile_interpolates_between_ranks(self):
        self.assertEqual(stats.percentile([3, 1, 2], 0.5), 2)
        self.assertEqual(stats.percentile([1, 2, 3, 4], 0.5), 2.5)
        self.assertAlmostEqual(stats.percentile(list(range(101)), 0.95), 95)
        self.assertIsNone(stats.percentile([], 0.5))

    def test_hundred_blocks_compare_the_first_and_last_hundred(self):
        times = [i * 1.0 for i in range(150)] + [150 + i * 2.0 for i in range(151)]
        first, last = stats.hundred_blocks(times)
        self.assertEqual(first, 1.0)
        self.assertEqual(last, 2.0)
        self.assertIsNone(stats.hundred_blocks(list(range(150))))

    def test_process_cpu_reads_utime_and_stime_past_a_command_name_with_spaces(self):
        ticks = procfs.CLOCK_TICKS
        stat = f"42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 {3 * ticks} {ticks} 0 0 20 0 9 0 100 1 1"
        self.assertEqual(procfs.parse_process_cpu(stat), 4.0)

    def test_machine_cpu_counts_busy_time_without_idle_and_iowait(self):
        ticks = procfs.CLOCK_TICKS
        text = f"cpu  {ticks} 0 {ticks} {10 * ticks} {ticks} 0 0 0 0 0\ncpu0 1 2 3\n"
        cpu = procfs.parse_machine_cpu(text)
        self.assertEqual(cpu.busy, 2.0)
        self.assertEqual(cpu.total, 13.0)

    def test_status_values_are_read_in_kib(self):
        self.assertEqual(procfs.parse_status_kib("Name:\tx\nVmHWM:\t   14560 kB\nVmRSS:\t 9000 kB\n", "VmHWM"), 14560)
        self.assertEqual(procfs.parse_status_kib("Name:\tx\n", "VmHWM"), 0)

    def test_polls_per_interval_uses_the_gaps_not_whole_polls_in_the_window(self):
        polls = [9.5, 10.5, 11.5]  # one a second; the window [10, 12) holds two
        self.assertAlmostEqual(runs.polls_per_interval(polls, 10, 12, 1.0), 1.0)
        self.assertAlmostEqual(runs.polls_per_interval([9.5, 10.0, 10.5, 11.0, 11.5], 10, 12, 1.0), 2.0)
        self.assertAlmostEqual(runs.polls_per_interval([10.5], 10, 12, 1.0), 0.5)  # one poll: count-based

    def test_min_gap_after_empty_skips_gaps_after_a_served_submission(self):
        log = [{"endpoint": "get_submission", "queue": "q", "time": 1.0, "return_code": 0},
               {"endpoint": "get_submission", "queue": "q", "time": 1.01, "return_code": 1},
               {"endpoint": "get_submission", "queue": "q", "time": 2.02, "return_code": 1},
               {"endpoint": "put_result", "queue": None, "time": 2.5, "return_code": 0}]
        self.assertAlmostEqual(runs.min_gap_after_empty(log, ["q"]), 1.01)

    def test_the_job_mix_has_one_of_each_special_and_never_starts_with_one(self):
        course = os.path.join(SOURCE_DIR, "examples", "demo-course")
        mix = jobs.build_jobs(course, 30)
        kinds = [job.kind for job in mix]
        for special in jobs.SPECIALS:
            self.assertEqual(kinds.count(special), 1)
        self.assertNotIn(kinds[0], jobs.SPECIALS)
        self.assertIn("01-average/right", kinds)
        self.assertIn("01-average/wrong", kinds)
        self.assertEqual({job.seed for job in mix}, {jobs.SEED})
        self.assertTrue(all(job.expected_score is not None for job in mix if job.kind not in jobs.SPECIALS))
        self.assertNotIn("timeout", [job.kind for job in jobs.build_jobs(course, 30, specials=False)])
        with self.assertRaises(ValueError):
            jobs.build_jobs(course, 3)

    def test_lifecycles_pair_engine_events_with_submissions(self):
        label = {engine.SUBMISSION_LABEL: "7"}
        events = [{"Action": action, "id": "c1", "timeNano": int(t * 1e9), "Actor": {"Attributes": label}}
                  for action, t in (("create", 1.0), ("start", 1.1), ("attach", 1.05), ("die", 2.0), ("destroy", 2.1))]
        self.assertEqual(engine.lifecycles(events), {"7": {"create": 1.0, "start": 1.1, "die": 2.0, "destroy": 2.1}})

    def test_lifecycles_map_containers_made_before_their_submission_through_the_log(self):
        waiting = {engine.SUBMISSION_LABEL: "waiting"}
        events = [{"Action": action, "id": cid, "timeNano": int(t * 1e9),
                   "Actor": {"Attributes": dict(waiting, **extra)}}
                  for cid, action, t, extra in (("aaa111", "create", 1.0, {}), ("aaa111", "start", 1.1, {}),
                                                ("bbb222", "create", 1.2, {}), ("aaa111", "kill", 5.0, {"signal": "28"}),
                                                ("aaa111", "kill", 5.5, {"signal": "9"}), ("aaa111", "die", 6.0, {}))]
        self.assertEqual(engine.lifecycles(events, {"7": "aaa"}),
                         {"7": {"create": 1.0, "start": 1.1, "job": 5.0, "die": 6.0}})
        self.assertEqual(engine.lifecycles(events), {}, "a waiting container is nobody's without the log")

    def test_the_graded_log_line_names_the_container(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
            log.write("2026-11-26 15:22:56.316 info  [bench-0#0] submission 12: grading with a/grader.py\n"
                      "2026-11-26 15:22:56.524 info  graded submission 12 in queue bench-0: graded in 207.971 ms "
                      "queue=bench-0 submission_id=12 verdict=graded total_ms=207.971 container=af3d2d38faf3\n")
            log.flush()
            started, container_of, delivered = runs.grading_log(log.name)
        self.assertEqual(container_of, {"12": "af3d2d38faf3"})
        self.assertEqual(list(started), [12])
        self.assertEqual(delivered, {}, "no job_delivery=fifo: the engine's job signal event times it")

    @staticmethod
    def parsed_grading_log(submission, fields):
        """runs.grading_log of a two-line log: `submission` logged as started, then graded with `fields`."""
        with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
            log.write(f"2026-11-26 15:22:56.316 info  [bench-0#0] submission {submission}: grading with a/grader.py\n"
                      f"2026-11-26 15:22:56.524 info  graded submission {submission} in queue bench-0: graded in "
                      f"207.971 ms queue=bench-0 submission_id={submission} verdict=graded total_ms=207.971 {fields}\n")
            log.flush()
            return runs.grading_log(log.name)

    def test_a_job_woken_through_the_fifo_is_timed_from_the_log(self):
        started, _, delivered = self.parsed_grading_log(
            12, "prepare_ms=0.5 create_ms=0 start_ms=1.5 run_ms=200 container=af3d2d38faf3 job_delivery=fifo")
        self.assertAlmostEqual(delivered[12] - started[12], 0.002, places=5)
        lifecycle = runs.job_lifecycle({"create": 1.0, "start": 1.1, "die": 9e9}, 12, started, delivered)
        self.assertEqual(lifecycle["job"], delivered[12])
        self.assertEqual(runs.job_lifecycle({"job": 5.0}, 12, started, delivered)["job"], 5.0,
                         "the engine's job signal event wins")

    def test_a_job_its_container_found_by_itself_is_timed_from_the_log_too(self):
        started, _, delivered = self.parsed_grading_log(
            13, "prepare_ms=0.5 create_ms=0 start_ms=0.1 run_ms=200 container=af3d2d38faf3 job_delivery=job-file")
        self.assertAlmostEqual(delivered[13] - started[13], 0.0006, places=5)

    def test_a_job_sent_the_signal_is_left_to_the_engine_event(self):
        _, container_of, delivered = self.parsed_grading_log(
            14, "prepare_ms=0.5 create_ms=0 start_ms=9 run_ms=200 container=af3d2d38faf3 job_delivery=signal")
        self.assertEqual(container_of, {"14": "af3d2d38faf3"})
        self.assertEqual(delivered, {})

    def test_phases_prepared_before_the_job_are_off_the_critical_path(self):
        cpu = procfs.CpuSnapshot(procfs.MachineCpu(0, 0), 0, None)
        ahead = runs.JobOutcome(0, "k", 0, 10.0, 10.5, None, None, "",
                                {"create": 1.0, "start": 1.1, "job": 10.01, "die": 10.4})
        cold = runs.JobOutcome(1, "k", 0, 20.0, 20.6, None, None, "",
                               {"create": 20.01, "start": 20.1, "die": 20.5})
        run = runs.RunResult("x", [ahead, cold], 0, 0, cpu)
        self.assertEqual(report.phase_values(run, "create", "start"), [20.1 - 20.01])
        self.assertEqual([round(v, 3) for v in report.phase_values(run, "run", "die")], [0.39, 0.4])
        self.assertEqual(report.phase_values(run, None, "create"), [20.01 - 20.0])
        # The next container starts (and waits) while this one grades: grading at once is still one.
        after = runs.JobOutcome(2, "k", 0, 10.5, 11.0, None, None, "", {"start": 10.1, "job": 10.51, "die": 10.9})
        self.assertEqual(report.max_running(runs.RunResult("x", [ahead, after], 0, 0, cpu)), 1)

    def test_max_running_counts_overlapping_containers_and_lets_a_die_precede_a_start(self):
        def job(index, start, die):
            return runs.JobOutcome(index, "k", 0, 0, 1, None, None, "", {"start": start, "die": die})
        cpu = procfs.CpuSnapshot(procfs.MachineCpu(0, 0), 0, None)
        overlapping = runs.RunResult("x", [job(0, 1, 3), job(1, 3, 4), job(2, 2, 3.5)], 0, 0, cpu)
        self.assertEqual(report.max_running(overlapping), 2)
        one_after_another = runs.RunResult("x", [job(0, 1, 2), job(1, 2, 3)], 0, 0, cpu)
        self.assertEqual(report.max_running(one_after_another), 1)

    def test_ratio_values_print_as_plain_numbers(self):
        for value, text in ((1.0349, "1.03"), (0.71234, "0.712"), (123.4, "123"), (0, "0"), (-12.5, "-12.50")):
            self.assertEqual(report.number(value), text)
            self.assertRegex(f"name: {report.number(value)}", report.RATIO_LINE)

    def test_median_lines_take_each_lines_median_over_repetitions(self):
        merged = report.median_lines([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 7.0}])
        self.assertEqual(merged, {"a": 2.0, "b": 6.0})

    def test_ratio_over_floor_compares_what_each_adds_above_the_floor(self):
        self.assertAlmostEqual(stats.ratio_over_floor(0.30, 0.25, 0.05), 1.25)
        self.assertAlmostEqual(stats.ratio_over_floor(0.05, 0.25, 0.05), 0.0)
        self.assertIsNone(stats.ratio_over_floor(0.3, 0.05, 0.05))
        self.assertIsNone(stats.ratio_over_floor(None, 0.25, 0.05))
        self.assertLess(stats.ratio_over_floor(0.3, 0.04, 0.05), 0)  # the reference below the floor: shown

    @staticmethod
    def run_of(name, seconds_per_job, machine_busy, n=4):
        jobs_done = [runs.JobOutcome(i, "double/right", 0, i * seconds_per_job, (i + 1) * seconds_per_job,
                                     1.0, 1.0, "exited") for i in range(n)]
        cpu = procfs.CpuSnapshot(procfs.MachineCpu(machine_busy, 2 * n * seconds_per_job), 0, None)
        return runs.RunResult(name, jobs_done, 0, 0, cpu)

    def test_the_reference_lines_need_the_one_interpreter_run_and_the_true_floor(self):
        watcher = self.run_of("watcher", 0.1, 1.2)         # 10 per s, 0.3 s of machine CPU each
        reference = self.run_of("one interpreter", 0.2, 1.0)  # 5 per s, 0.25 s each
        true_floor = self.run_of("true floor", 0.05, 0.2)    # 0.05 s each
        lines = report.comparisons(watcher, {"one-interpreter": reference, "true": true_floor})
        self.assertAlmostEqual(lines["throughput_vs_one_interpreter"], 2.0)
        self.assertAlmostEqual(lines["machine_cpu_per_submission_vs_one_interpreter"], 1.2)
        self.assertAlmostEqual(lines["container_cpu_over_true_floor_vs_one_interpreter"], 1.25)
        without_true = report.comparisons(watcher, {"one-interpreter": reference})
        self.assertNotIn("container_cpu_over_true_floor_vs_one_interpreter", without_true)
        self.assertIn("throughput_vs_one_interpreter", without_true)
        self.assertFalse({name for name in report.comparisons(watcher, {"true": true_floor}) if "one_interpreter" in name})

    def test_cpu_per_submission_counts_the_steady_part_without_the_harness(self):
        # 1.2 s of machine CPU over the last 3 of 4 submissions, 0.3 s of it the stand-in and this driver.
        cpu = procfs.CpuSnapshot(procfs.MachineCpu(1.2, 4.0), 0.3, 0.6, harness=0.3)
        jobs_done = [runs.JobOutcome(i, "k", 0, i, i + 1, 1.0, 1.0, "") for i in range(4)]
        metrics = report.run_metrics(runs.RunResult("watcher", jobs_done, 0, 0, cpu, cpu_submissions=3))
        self.assertAlmostEqual(metrics["machine_cpu_per_submission_s"], 0.4)
        self.assertAlmostEqual(metrics["grading_cpu_per_submission_s"], 0.3)
        self.assertAlmostEqual(metrics["containers_cpu_per_submission_ms"], 200)
        self.assertAlmostEqual(metrics["harness_cpu_per_submission_ms"], 100)
        self.assertEqual(runs.steady_from(30), 3)
        self.assertEqual(runs.steady_from(5), 1)
        pooled = runs.pooled([runs.RunResult("w", jobs_done, 0, 0, cpu, cpu_submissions=3)] * 2)
        self.assertEqual(pooled.cpu_n, 6)

    def test_floor_totals_add_up_every_floors_losses_and_mismatches(self):
        watcher = self.run_of("watcher", 0.1, 1.0)
        lost = dataclasses.replace(self.run_of("api floor", 0.1, 1.0), lost=2)
        wrong = self.run_of("one interpreter", 0.1, 1.0)
        wrong.jobs[0].score = 0.5
        totals = report.totals(watcher, floors=[lost, wrong])
        self.assertEqual((totals["floor_lost_submissions"], totals["floor_score_mismatches"]), (2, 1))
        self.assertNotIn("floor_lost_submissions", report.totals(watcher))

    def test_each_exercise_sets_specials_use_a_grader_of_its_own_course(self):
        for name, exercises in jobs.EXERCISES.items():
            course = os.path.join(SOURCE_DIR, exercises.course)
            self.assertEqual(set(exercises.specials), set(jobs.SPECIALS), name)
            for kind, (grader, _) in exercises.specials.items():
                self.assertTrue(os.path.isfile(os.path.join(course, grader)), f"{name} {kind}: {grader}")
        mix = jobs.build_jobs(os.path.join(SOURCE_DIR, "bench", "trivial-course"), 10,
                              special_code=jobs.TRIVIAL_SPECIALS)
        self.assertEqual({job.grader for job in mix}, {"double/grader.py"})
        self.assertEqual(sorted(job.kind for job in mix if job.expected_score is None), sorted(jobs.SPECIALS))

    def test_the_one_interpreter_script_gives_every_sample_its_expected_score(self):
        # The reference's own logic, on this machine's python3 with the image's library on the path; the
        # tiny reference run above runs it in the image.
        script_path = os.path.join(SOURCE_DIR, "bench", "floor", "one_interpreter.py")
        environment = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_DIR, "images", "python", "lib"))
        for course in (os.path.join(SOURCE_DIR, "examples", "demo-course"),
                       os.path.join(SOURCE_DIR, "bench", "trivial-course")):
            for kind, grader, sample, expected in jobs.course_samples(course):
                with self.subTest(kind=kind), tempfile.TemporaryDirectory() as job_dir:
                    shutil.copy(sample, os.path.join(job_dir, "submission"))
                    with open(os.path.join(job_dir, "job.json"), "w") as job:
                        json.dump({"grader": grader, "seed": jobs.SEED, "lang": "en"}, job)
                    ran = subprocess.run([sys.executable, "-B", script_path, course, job_dir],
                                         capture_output=True, text=True, env=environment, timeout=60)
                    self.assertEqual(ran.returncode, 0, ran.stderr)
                    self.assertAlmostEqual(json.loads(ran.stdout)["score"], expected, msg=ran.stdout[:2000])


if __name__ == "__main__":
    unittest.main()
