#!/usr/bin/env python3
"""Drives the demo: stand-in XQueue + the watcher binary on the example course, results as a table."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import xqueue_standin  # noqa: E402

COURSE = os.path.join(ROOT, "examples", "demo-course")
QUEUE = "demo-course"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18040, help="stand-in XQueue port (default 18040)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for every result")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at once by the course check")
    args = parser.parse_args()

    with open(os.path.join(COURSE, "expected.json")) as source:
        expected = json.load(source)
    standin = xqueue_standin.XQueueStandin(port=args.port, users={"lms": "lms"}, queues=[QUEUE])
    standin.start()
    env = dict(os.environ, XQUEUE_URL=f"http://127.0.0.1:{args.port}", XQUEUE_PASSWORD="lms")
    log_path = os.path.join(ROOT, "build", "demo-watcher.log")
    log = open(log_path, "wb")
    watcher = subprocess.Popen([os.path.join(ROOT, "build", "xqueue-watcher"), "-d", ROOT],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    print(f"demo: stand-in XQueue on port {args.port}; watcher pid {watcher.pid} (log: {log_path})")
    try:
        client = standin.client()
        submitted = {}
        for relative in sorted(expected):
            exercise = relative.split("/")[0]
            with open(os.path.join(COURSE, relative), encoding="utf-8", errors="surrogateescape",
                      newline="") as source:  # byte for byte: some samples use CRLF
                response = source.read()
            # The seed expected.json was computed with (the LMS sends one per problem instance).
            sid = client.submit(QUEUE, student_response=response,
                                grader_payload={"grader": f"{exercise}/grader.py"},
                                student_info={"anonymous_student_id": "demo", "random_seed": 1})
            submitted[sid] = relative
        print(f"demo: submitted {len(submitted)} submissions to queue {QUEUE}; grading...")
        deadline = time.time() + args.timeout
        while len({r["submission_id"] for r in client.results()} & submitted.keys()) < len(submitted):
            if watcher.poll() is not None:
                sys.exit(f"demo: the watcher exited with {watcher.returncode}; see {log_path}")
            if time.time() > deadline:
                sys.exit(f"demo: not every submission was graded within {args.timeout:.0f}s; see {log_path}")
            time.sleep(0.2)
        mismatches = print_table(client.results(), submitted, expected)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(60)
        standin.stop()
        log.close()
    print("demo: stopped the watcher and the stand-in")
    # The same samples as course staff check them before a term (and in their course repository's CI):
    # no XQueue, every sample through the queue's image and limits, a table and an exit code.
    command = [os.path.join(ROOT, "build", "xqueue-watcher"), "grade", "--course", COURSE, "-d", ROOT,
               "--queue", QUEUE, "-j", str(args.jobs)]
    print(f"\ndemo: the course staff's check: xqueue-watcher grade --course examples/demo-course -d . "
          f"--queue {QUEUE} -j {args.jobs}")
    sys.stdout.flush()
    check = subprocess.run(command)
    if mismatches:
        sys.exit(f"demo: {mismatches} result(s) differ from examples/demo-course/expected.json")
    if check.returncode != 0:
        sys.exit(f"demo: xqueue-watcher grade --course exited {check.returncode}")


def print_table(results, submitted, expected):
    rows = []
    mismatches = 0
    for result in results:
        relative = submitted.get(result["submission_id"])
        if relative is None:
            continue
        body = result["body"] or {}
        status = "CORRECT" if body.get("correct") else ("ERROR" if ">ERROR<" in body.get("msg", "").replace("\n", "").replace(" ", "") else "INCORRECT")
        ok = abs(float(body.get("score", -1)) - float(expected[relative])) < 1e-6
        mismatches += 0 if ok else 1
        rows.append((relative, status, f"{float(body.get('score', 0)):.3f}", f"{float(expected[relative]):.3f}",
                     "ok" if ok else "MISMATCH"))
    rows.sort()
    header = ("submission", "status", "score", "expected", "")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    return mismatches


if __name__ == "__main__":
    main()
