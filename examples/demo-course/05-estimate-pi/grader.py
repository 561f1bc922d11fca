"""A custom comparison with a tolerance that raises EndTest for output that is not a
number, and a test that stops with grader.end_test."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("estimate_pi"))


def close_enough(expected, actual):
    try:
        value = float(actual)
    except ValueError:
        raise gradelib.EndTest("estimate_pi should return a number, it printed %r" % actual.strip())
    return abs(value - float(expected)) < 1e-3


def print_estimate(submission):
    print(submission.estimate_pi(2000))


def check_type(submission):
    result = submission.estimate_pi(10)
    if not isinstance(result, float):
        grader.end_test("estimate_pi must return a float, not %s" % type(result).__name__)
    print("estimate_pi returns a float")


grader.add_test(gradelib.Test(print_estimate, "Test: estimate_pi(2000) is within 0.001 of the answer",
                              compare=close_enough))
grader.add_test(gradelib.Test(check_type, "Test: estimate_pi returns a float"))
