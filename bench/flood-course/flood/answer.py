"""Benchmark only: a staff answer that prints 200 MiB. The Python image sends the answer run's output to
the container's stderr (students' output never reaches the container's streams), so this is how a
container prints far past the watcher's stderr cap."""
import sys

_LINE = "flood " * 170 + "flood\n"  # 1 KiB
for _ in range(200 * 1024):
    sys.stderr.write(_LINE)


def double(x):
    return 2 * x
