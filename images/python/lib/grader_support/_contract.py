"""The image's side of the container contract: mount points, users and limits.

The Dockerfile declares the same paths as image labels, which is how the watcher
learns them; keep the two in step.
"""

GRADER_DIR = "/xqw/private/grader"  # problem directory (grader file, answer.py, helpers), read-only
JOB_DIR = "/xqw/private/job"  # job.json and submission, read-only
# A FIFO the watcher makes in the job directory of a container started before its job; one byte
# written into it (after job.json) wakes the waiting supervisor without an engine call.
JOB_READY_FIFO = "job-ready"

# Users the supervisor (uid 0, only CAP_SETUID/CAP_SETGID) switches to.
STAFF_UID = STAFF_GID = 10000  # loads the grader, preprocesses, compares; runs answer.py
STUDENT_UID = STUDENT_GID = 10001  # runs the submission
# The real uid the supervisor takes (effective uid the student's, saved uid 0) for the one kill of
# every student process: students cannot signal it meanwhile (_processes.kill_all_of).
REAPER_UID = 10002

ANSWER_FILE = "answer.py"
SUBMISSION_MODULE = "submission"
ANSWER_MODULE = "answer"


def catalog_languages(lang):
    """gettext language names to try for job.json's ``lang``, most specific first.

    Open edX codes use dashes ("pt-br"); catalogs are often named "pt_BR" or "pt".
    """
    if not isinstance(lang, str) or not lang:
        return ["en"]
    base, _, region = lang.replace("-", "_").partition("_")
    names = [lang, base + "_" + region.upper() if region else base, base]
    return list(dict.fromkeys(names))


OUTPUT_LIMIT = 5000  # characters of a test's actual output kept (upstream TOO_LONG)
TRUNCATION_MARK = "...OUTPUT TRUNCATED"
SUBMISSION_LIMIT = 32 * 1024 * 1024  # bytes of submission accepted
VIEW_LIMIT_BYTES = 32 * 1024 * 1024  # bytes of problem directory copied for the runs
VIEW_LIMIT_FILES = 2000
FILES_LIMIT_BYTES = 64 * 1024 * 1024  # bytes of uploaded files read from the job, all together
FILES_LIMIT_COUNT = 1000
