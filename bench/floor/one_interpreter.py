"""The benchmark's one-interpreter reference: one job graded by ONE python3 process.

xqw-bench-floor runs this as `python3 -I -B -c <this file> GRADER_DIR JOB_DIR` in the Python grader
image, in the same container spec as the api floor (limits, mounts, user) but without the image's
supervisor: no staff and student processes, no uid separation, no read-only view of the problem, no
reaper. It loads the grader once, runs the staff answer (answer.py next to the grader) and the submission
in-process through every test with the image's own gradelib and runtime helpers, compares each test's
output with the test's compare_results, and prints one result line of the image's shape,
{"correct", "score", "errors", "tests"}. It is what grading costs when the interpreter is paid once, the
reference the watcher's CPU per submission is held against (docs/performance.md). It trusts the
submission completely: never use it to grade anything real.

Seeds as in the image: each run (answer, submission) starts from the random state a fresh interpreter
would have right after loading the grader (gradelib.rand = Random(seed), random.seed(seed + 1), then the
grader), so seeded exercises get the same inputs as in the image.
"""
import json
import os
import random
import sys

from grader_support import _contract, _outcome, _runner, _runtime, _staff, gradelib


def read_text(path):
    with open(path, "rb") as source:
        return source.read().decode("utf-8")


def load_job(job_dir):
    with open(os.path.join(job_dir, "job.json"), "rb") as source:
        job = json.loads(source.read().decode("utf-8"))
    return job, read_text(os.path.join(job_dir, "submission"))


def run_tests(grader, module_name, source, output_limit, random_states):
    """The grader's tests on `source` as module `module_name` (a fresh sys.modules entry), through the
    image's own runner functions: (the import's traceback or None, [[short, long, output]], tests that
    raised)."""
    random_states.restore()
    filename = module_name + ".py"
    student_files = {filename, "<string>"}
    output = {"grader": {"status": "ok", "exception": None}, "submission": {"status": "notrun", "exception": None},
              "results": [], "exceptions": 0}
    module = _runner._import_module(module_name, filename, source, output, student_files, [])
    if module is None:
        return output["submission"]["exception"], [], 0
    _runner._run_tests(grader, module, output_limit, output, student_files, [])
    return None, output["results"], output["exceptions"]


class RandomStates:
    """The random state right after the grader loaded, restored before each run."""

    def __init__(self):
        self.private = gradelib.rand.getstate()
        self.shared = random.getstate()

    def restore(self):
        gradelib.rand.setstate(self.private)
        random.setstate(self.shared)


def grade(grader_dir, job_dir):
    job, submission = load_job(job_dir)
    grader_file = os.path.join(grader_dir, job["grader"])
    answer = read_text(os.path.join(os.path.dirname(grader_file), _contract.ANSWER_FILE))
    _runtime.prepare_interpreter(grader_file, job.get("lang") or "en", int(job.get("seed", 1)))
    with _runtime.captured_stdout(0):
        grader = _runtime.load_grader(grader_file).grader
    random_states = RandomStates()

    input_errors = [str(error) for error in grader.input_errors(submission)]
    if input_errors:
        return _outcome.result(errors=input_errors)
    answer = grader.preprocess(answer.expandtabs(4))
    submission = grader.preprocess(submission.expandtabs(4))

    answer_error, expected, raised = run_tests(grader, _contract.ANSWER_MODULE, answer, None, random_states)
    if answer_error is not None or raised:
        return _outcome.error_result(gradelib._, _outcome.STAFF_PROBLEM)
    swallowed_before = grader.uncaught_end_tests()
    error, actual, _ = run_tests(grader, _contract.SUBMISSION_MODULE, submission, _contract.OUTPUT_LIMIT,
                              random_states)
    if error is not None:
        return _outcome.result(errors=[error])
    if grader.uncaught_end_tests() > swallowed_before:
        return _outcome.result(errors=[gradelib._(
            "Your code interfered with our grader.  Don't use bare 'except' clauses.")])
    rows = [[e[0], e[1], e[2], a[2]] for e, a in zip(expected, actual)]
    comparisons = _staff.compare(grader, [[e[2], a[2]] for e, a in zip(expected, actual)])
    return _outcome.graded_result(rows, comparisons, bool(job.get("hide_output")), gradelib._)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 -c <one_interpreter.py> GRADER_DIR JOB_DIR\n")
        return 2
    result = grade(*argv)
    sys.stdout.write(json.dumps(_outcome.sanitized(result), ensure_ascii=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
