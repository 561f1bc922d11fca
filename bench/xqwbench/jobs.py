"""The submissions every run grades: the exercise set's samples (right, wrong, error) in turn, plus one
each of a time-out, a memory hog and 200 MB of output written for the same set's graders.

Two exercise sets (`bench/run --exercise`): `demo`, the seven exercises of examples/demo-course, and
`trivial`, bench/trivial-course's one five-test `double(x)` exercise, where a container's cost is mostly
the engine's and the interpreters' start rather than the grading."""
import dataclasses
import json
import os
from typing import Dict, List, Optional

# The problem instance's random_seed, as the LMS sends it; expected.json's scores were computed with 1
# (scripts/demo uses it too), and seeded exercises (05, 07) only match them with it.
SEED = 1

# Student code that hits each limit (grader relative to the course root, code). Each passes its exercise's
# input checks, so it really runs.
SPECIALS: Dict[str, tuple] = {
    "timeout": ("01-average/grader.py",
                "def average(numbers):\n    while True:\n        pass\n"),
    "memory": ("01-average/grader.py",
               "def average(numbers):\n    hoard = []\n    while True:\n"
               "        hoard.append('x' * (32 << 20))\n"),
    "output": ("02-rectangle-script/grader.py",
               "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(200 * 1024):\n"
               "    sys.stdout.write(line)\nprint(width * height)\n"),
}
# The same three for bench/trivial-course: its only exercise is `double(x)`. The output one prints its
# 200 MB once, when the module is loaded, as the demo's script does.
TRIVIAL_SPECIALS: Dict[str, tuple] = {
    "timeout": ("double/grader.py", "def double(x):\n    while True:\n        pass\n"),
    "memory": ("double/grader.py",
               "def double(x):\n    hoard = []\n    while True:\n        hoard.append('x' * (32 << 20))\n"),
    "output": ("double/grader.py",
               "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(200 * 1024):\n    sys.stdout.write(line)\n\n\n"
               "def double(x):\n    return x * 2\n"),
}


@dataclasses.dataclass(frozen=True)
class Exercises:
    """An exercise set: its course (relative to the source tree) and the specials written for it."""
    course: str
    specials: Dict[str, tuple]


EXERCISES: Dict[str, Exercises] = {
    "demo": Exercises("examples/demo-course", SPECIALS),
    "trivial": Exercises("bench/trivial-course", TRIVIAL_SPECIALS),
}


@dataclasses.dataclass
class Job:
    index: int
    kind: str                 # "01-average/right", or a SPECIALS key
    grader: str               # relative to the course root, as in the grader_payload
    student_response: str
    seed: int
    expected_score: Optional[float]  # None for the specials
    submission_id: int = 0    # the stand-in's id, once submitted

    def floor_entry(self) -> dict:
        # Floors name their containers by position (index + 1); the report pairs jobs by index.
        return {"submission_id": self.index + 1, "grader": self.grader,
                "student_response": self.student_response, "seed": self.seed, "kind": self.kind}


def course_samples(course_dir: str) -> List[tuple]:
    """(kind, grader, submission path, expected score) for every sample in expected.json, in its order."""
    with open(os.path.join(course_dir, "expected.json")) as source:
        expected = json.load(source)
    samples = []
    for relative, score in expected.items():
        exercise, _, file_name = relative.split("/")
        kind = f"{exercise}/{os.path.splitext(file_name)[0]}"
        samples.append((kind, f"{exercise}/grader.py", os.path.join(course_dir, relative), score))
    return samples


def special_positions(n: int, count: int) -> List[int]:
    """Where the specials go: spread evenly, never first (the first job also times the start-up)."""
    return [round((k + 1) * n / (count + 1)) for k in range(count)]


def build_jobs(course_dir: str, n: int, specials: bool = True,
               special_code: Optional[Dict[str, tuple]] = None) -> List[Job]:
    """`n` jobs: the course's samples in turn, with the specials (`special_code`, default the demo course's)
    spread among them unless `specials` is false."""
    special_code = SPECIALS if special_code is None else special_code
    special_kinds = list(special_code) if specials else []
    if n < len(special_kinds) + 1:
        raise ValueError(f"{n} submissions cannot hold the {len(special_kinds)} special ones and a graded one "
                         "(use more, or --no-specials)")
    samples = course_samples(course_dir)
    positions = dict(zip(special_positions(n, len(special_kinds)), special_kinds))
    jobs, normal = [], 0
    for index in range(n):
        seed = SEED
        if index in positions:
            grader, code = special_code[positions[index]]
            jobs.append(Job(index, positions[index], grader, code, seed, None))
            continue
        kind, grader, path, score = samples[normal % len(samples)]
        normal += 1
        with open(path, encoding="utf-8", newline="") as source:
            jobs.append(Job(index, kind, grader, source.read(), seed, score))
    return jobs


def flood_jobs(flood_course_dir: str, n: int) -> List[Job]:
    """Jobs whose staff answer prints 200 MiB to the container's stderr (bench/flood-course)."""
    with open(os.path.join(flood_course_dir, "flood", "submissions", "right.py")) as source:
        code = source.read()
    return [Job(i, "flood", "flood/grader.py", code, SEED, 1.0) for i in range(n)]


def score_matches(expected: Optional[float], actual: Optional[float]) -> bool:
    return expected is None or (actual is not None and abs(expected - actual) < 1e-6)
