"""From run reports to the result: validation, staff problems, comparison rows, scoring."""

import json
import unittest

from grader_support import _outcome


def identity(message):
    return message


def report(results=(), grader="ok", submission="ok", exceptions=0, submission_exception=None):
    return {"grader": {"status": grader, "exception": None},
            "submission": {"status": submission, "exception": submission_exception},
            "results": [list(row) for row in results], "exceptions": exceptions}


class ValidationTest(unittest.TestCase):
    def test_a_well_formed_report_passes_unchanged(self):
        good = report([["t", None, "out\n"]])
        self.assertEqual(_outcome.validated_report(good), good)

    def test_malformed_reports_are_refused(self):
        bad = [
            "text", {}, report(exceptions="0"), report(exceptions=True),
            dict(report(), grader={"status": 1}), dict(report(), submission=None),
            dict(report(), results={}), report([["t", None]]), report([["t", None, 5]]),
            report([[["t"], None, "x"]]),
            dict(report(), submission={"status": "error", "exception": ["x"]}),
        ]
        for candidate in bad:
            with self.subTest(candidate=candidate), self.assertRaises(ValueError):
                _outcome.validated_report(candidate)


class StaffRunTest(unittest.TestCase):
    def test_clean_run_is_fine(self):
        self.assertIsNone(_outcome.staff_run_problem(report([["t", "", "1\n"]])))

    def test_any_failure_is_a_staff_problem(self):
        self.assertIn("grader", _outcome.staff_run_problem(report(grader="error")))
        self.assertIn("answer.py", _outcome.staff_run_problem(report(submission="error")))
        problem = _outcome.staff_run_problem(
            report([["t", "", "Traceback ...\nNameError: x\n"]], exceptions=1))
        self.assertIn("NameError", problem)


class StudentRunTest(unittest.TestCase):
    def test_grader_failure_means_we_could_not_run(self):
        self.assertEqual(_outcome.student_run_errors(report(grader="error"), identity),
                         ([_outcome.COULD_NOT_RUN], False))

    def test_submission_failure_shows_its_exception_or_a_generic_text(self):
        self.assertEqual(
            _outcome.student_run_errors(report(submission="error", submission_exception="Boom"), identity),
            (["Boom"], True))
        self.assertEqual(_outcome.student_run_errors(report(submission="caught"), identity),
                         ([_outcome.SUBMISSION_FAILED], True))

    def test_clean_run_has_no_errors(self):
        self.assertEqual(_outcome.student_run_errors(report(), identity), ([], True))


class ComparisonRowsTest(unittest.TestCase):
    def test_rows_pair_outputs_and_truncate_the_actual_only(self):
        long_text = "y" * 6000
        error, rows = _outcome.comparison_rows(
            report([["a", "long a", "x" * 6000], ["b", None, "2\n"]]),
            report([["a", "student long", long_text], ["b", "ignored", "3\n"]]), identity)
        self.assertIsNone(error)
        self.assertEqual(rows[0][:3], ["a", "long a", "x" * 6000])
        self.assertEqual(rows[0][3], "y" * 5000 + "...OUTPUT TRUNCATED")
        self.assertEqual(rows[1], ["b", None, "2\n", "3\n"])

    def test_count_and_description_mismatches(self):
        self.assertEqual(_outcome.comparison_rows(report([["a", "", ""]]), report(), identity)[0],
                         _outcome.TEST_COUNT_MISMATCH)
        self.assertEqual(
            _outcome.comparison_rows(report([["a", "", ""]]), report([["b", "", ""]]), identity)[0],
            _outcome.TESTS_MISMATCH)

    def test_truncate_is_idempotent(self):
        once = _outcome.truncate("z" * 7000)
        self.assertEqual(_outcome.truncate(once), once)
        self.assertEqual(_outcome.truncate("short"), "short")


class GradedResultTest(unittest.TestCase):
    rows = [["a", "A", "1\n", "1\n"], ["b", None, "2\n", "3\n"], ["c", "C", "x", "y"]]

    def test_score_is_the_fraction_passed(self):
        result = _outcome.graded_result(self.rows, [[True, None], [False, None], [1, None]], False, identity)
        self.assertEqual(result["score"], 2 / 3)
        self.assertFalse(result["correct"])
        self.assertEqual(result["errors"], [])
        self.assertEqual(result["tests"][0], ["a", "A", True, "1\n", "1\n"])
        self.assertEqual(result["tests"][1], ["b", "", False, "2\n", "3\n"])
        self.assertIs(result["tests"][2][2], True)

    def test_all_passed_is_correct(self):
        result = _outcome.graded_result(self.rows[:1], [[True, None]], False, identity)
        self.assertEqual((result["correct"], result["score"]), (True, 1.0))

    def test_end_test_message_is_appended_to_the_actual_output(self):
        result = _outcome.graded_result(self.rows[:1], [[False, "not a number"]],
                                        False, lambda m: {"ERROR": "FEHLER"}.get(m, m))
        self.assertEqual(result["tests"][0][4], "1\n\n*** FEHLER: not a number ***")

    def test_hide_output_keeps_the_score(self):
        result = _outcome.graded_result(self.rows, [[True, None]] * 3, True, identity)
        self.assertEqual((result["correct"], result["score"], result["tests"]), (True, 1.0, []))

    def test_no_tests_is_an_error(self):
        result = _outcome.graded_result([], [], False, identity)
        self.assertEqual((result["correct"], result["score"]), (False, 0.0))
        self.assertEqual(result["errors"], [_outcome.NO_TESTS_RAN])


class SanitizeTest(unittest.TestCase):
    def test_lone_surrogates_are_replaced_and_pairs_joined(self):
        cleaned = _outcome.sanitized({"tests": [["\ud800x", "\ud83d\ude00", True, 1.5]]})
        self.assertEqual(cleaned, {"tests": [["\ufffdx", "\U0001F600", True, 1.5]]})
        json.loads(json.dumps(cleaned))


if __name__ == "__main__":
    unittest.main()
