"""gradelib's graders, tests, test functions and preprocessors, in process."""

import types
import unittest

import gradelib
from grader_support import gradelib as packaged

from support import captured, translator


def module_with(**attributes):
    module = types.ModuleType("submission")
    module.__dict__.update(attributes)
    return module


def wrapped_module(code):
    module = types.ModuleType("submission")
    module.__file__ = "submission.py"
    exec(gradelib.wrap_in_string(code), module.__dict__)
    return module


class ImportTest(unittest.TestCase):
    def test_both_spellings_are_one_module(self):
        self.assertIs(gradelib, packaged)
        self.assertIs(gradelib.EndTest, packaged.EndTest)


class GraderTest(unittest.TestCase):
    def test_new_grader_has_fix_line_endings_only(self):
        grader = gradelib.Grader()
        self.assertEqual(grader.tests(), [])
        self.assertEqual(grader.input_errors("anything"), [])
        self.assertEqual(grader.preprocess("a\r\nb\r\n"), "a\nb\n")

    def test_tests_keep_the_order_they_were_added(self):
        grader = gradelib.Grader()
        first, second = gradelib.Test(print, "one"), gradelib.Test(print, "two")
        grader.add_test(first)
        grader.add_test(second)
        self.assertEqual(grader.tests(), [first, second])

    def test_preprocessors_run_in_order_after_fix_line_endings(self):
        grader = gradelib.Grader()
        grader.add_preprocessor(lambda code: code + "A")
        grader.add_preprocessor(lambda code: code.replace("\r", "!") + "B")
        self.assertEqual(grader.preprocess("x\r"), "xAB")

    def test_input_errors_lists_every_complaint_and_drops_passes(self):
        grader = gradelib.Grader()
        grader.add_input_check(lambda code: None)
        grader.add_input_check(lambda code: "first")
        grader.add_input_check(lambda code: "")
        grader.add_input_check(lambda code: "second " + code)
        self.assertEqual(grader.input_errors("c"), ["first", "second c"])

    def test_add_tests_from_class_makes_a_test_per_method_in_name_order(self):
        class Checks:
            def test_zeta_last(self, module):
                """docstring of zeta"""
                print("z", module.value)

            def test_alpha_first(self, module):
                print("a")

            def helper(self, module):
                raise AssertionError("not a test")

        grader = gradelib.Grader()
        grader.add_tests_from_class(Checks)
        tests = grader.tests()
        self.assertEqual([t.short_description for t in tests], ["Test: alpha first", "Test: zeta last"])
        self.assertEqual(tests[1].detailed_description, "docstring of zeta")
        self.assertIsNone(tests[0].detailed_description)
        with captured() as out:
            tests[1](module_with(value=3))
        self.assertEqual(out.getvalue(), "z 3\n")
        self.assertTrue(tests[0].compare_results("x", "x"))
        self.assertFalse(tests[0].compare_results("x", "y"))

    def test_add_tests_from_class_uses_the_class_compare(self):
        class Checks:
            def test_it(self, module):
                print(1)

            def compare_results(self, expected, actual):
                return expected.strip() == actual.strip()

        grader = gradelib.Grader()
        grader.add_tests_from_class(Checks)
        self.assertTrue(grader.tests()[0].compare_results("1\n", "1   "))

    def test_end_test_prints_counts_and_raises(self):
        grader = gradelib.Grader()
        with captured() as out, self.assertRaises(gradelib.EndTest):
            grader.end_test("bad input")
        self.assertEqual(out.getvalue(), "*** Error: bad input\n")
        self.assertEqual(grader.uncaught_end_tests(), 1)
        grader.caught_end_test()
        self.assertEqual(grader.uncaught_end_tests(), 0)


class TestClassTest(unittest.TestCase):
    def test_calls_the_function_and_compares_by_equality(self):
        test = gradelib.Test(lambda module: print(module.x * 2), "doubles", "long text")
        self.assertEqual((test.short_description, test.detailed_description), ("doubles", "long text"))
        with captured() as out:
            test(module_with(x=21))
        self.assertEqual(out.getvalue(), "42\n")
        self.assertTrue(test.compare_results("42\n", "42\n"))
        self.assertFalse(test.compare_results("42\n", "42"))

    def test_detailed_description_defaults_to_empty(self):
        self.assertEqual(gradelib.Test(print, "short").detailed_description, "")

    def test_custom_compare_replaces_equality(self):
        test = gradelib.Test(print, "t", compare=lambda expected, actual: actual.startswith(expected))
        self.assertTrue(test.compare_results("ab", "abc"))

    def test_end_test_carries_its_message(self):
        self.assertEqual(str(gradelib.EndTest("why")), "why")
        self.assertEqual(gradelib.EndTest().args, (None,))


class InvokeStudentFunctionTest(unittest.TestCase):
    def test_prints_repr_of_the_result_with_a_default_description(self):
        test = gradelib.InvokeStudentFunctionTest("add", [2, "x"])
        self.assertEqual(test.short_description, "Test: add(2, 'x')")
        self.assertIsNone(test.detailed_description)
        with captured() as out:
            test(module_with(add=lambda a, b: str(a) + b))
        self.assertEqual(out.getvalue(), "'2x'\n")

    def test_environment_is_set_on_the_module_and_writer_formats(self):
        module = module_with()
        module.area = lambda radius: module.PI * radius * radius
        test = gradelib.InvokeStudentFunctionTest(
            "area", [2], environment={"PI": 3.0}, output_writer=gradelib.round_float_writer(3),
            short_desc="area", detailed_desc="of a circle", compare=lambda e, a: True)
        with captured() as out:
            test(module)
        self.assertEqual(module.PI, 3.0)
        self.assertEqual(out.getvalue(), "12.000\n")
        self.assertEqual((test.short_description, test.detailed_description), ("area", "of a circle"))
        self.assertTrue(test.compare_results("a", "b"))

    def test_invoke_student_function_is_a_plain_test_function(self):
        function = gradelib.invoke_student_function("f", [[1, 2]], output_writer=str)
        with captured() as out:
            function(module_with(f=sum))
        self.assertEqual(out.getvalue(), "3\n")

    def test_missing_function_raises_attribute_error(self):
        with captured(), self.assertRaises(AttributeError):
            gradelib.invoke_student_function("nope", [])(module_with())


class WrappedCodeTest(unittest.TestCase):
    def test_wrap_in_string_round_trips_any_text(self):
        code = "print('a\\tb')\n\"quote\" 'single' \\ \u20ac\r\n"
        namespace = {}
        exec(gradelib.wrap_in_string(code), namespace)
        self.assertEqual(namespace["submission_code"], code)
        self.assertTrue(gradelib.wrap_in_string("x").startswith("submission_code = "))

    def test_fix_line_endings_drops_carriage_returns(self):
        self.assertEqual(gradelib.fix_line_endings("a\r\nb\rc"), "a\nbc")

    def test_exec_wrapped_student_code_test_as_documented(self):
        grader = gradelib.Grader()
        grader.add_preprocessor(gradelib.wrap_in_string)
        grader.add_test(gradelib.ExecWrappedStudentCodeTest({"n": 4}, "basic test"))
        source = grader.preprocess("for i in range(n):\r\n    print(i * i)\r\n")
        module = types.ModuleType("submission")
        exec(source, module.__dict__)
        test = grader.tests()[0]
        self.assertEqual(test.short_description, "basic test")
        with captured() as out:
            test(module)
        self.assertEqual(out.getvalue(), "0\n1\n4\n9\n\n")

    def test_exec_wrapped_student_code_test_defaults(self):
        test = gradelib.ExecWrappedStudentCodeTest()
        self.assertTrue(test.short_description.startswith("Test: "))
        with captured() as out:
            test(wrapped_module("print('hi')"))
        self.assertEqual(out.getvalue(), "hi\n\n")

    def test_exec_wrapped_code_runs_in_the_environment_and_post_processes(self):
        environment = {"name": "ada"}
        function = gradelib.exec_wrapped_code(environment, post_process=str.upper)
        with captured() as out:
            function(wrapped_module("greeting = 'hello ' + name\nprint(greeting)"))
        self.assertEqual(out.getvalue(), "HELLO ADA\n\n")
        self.assertEqual(environment["greeting"], "hello ada")

    def test_exec_wrapped_code_errors_point_at_the_student_line(self):
        import traceback

        function = gradelib.exec_wrapped_code({})
        try:
            with captured():
                function(wrapped_module("x = 1\ny = x / 0\n"))
        except ZeroDivisionError:
            text = traceback.format_exc()
        self.assertIn('File "submission.py", line 2', text)
        self.assertIn("y = x / 0", text)

    def test_exec_code_and_inspect_values_prints_only_the_variables(self):
        function = gradelib.exec_code_and_inspect_values({"base": 2}, ["power", "label"])
        with captured() as out:
            function(wrapped_module("power = base ** 10\nlabel = 'p'\nprint('ignored')"))
        self.assertEqual(out.getvalue(), "1024\n'p'\n")

    def test_exec_code_and_inspect_values_missing_variable_fails(self):
        function = gradelib.exec_code_and_inspect_values({}, ["missing"])
        with captured(), self.assertRaisesRegex(NameError, "missing"):
            function(wrapped_module("other = 1"))

    def test_round_float_writer(self):
        self.assertEqual(gradelib.round_float_writer(2)(2.0 / 3), "0.67")
        self.assertEqual(gradelib.round_float_writer(0)(2.5001), "3")

    def test_capture_stdout_restores_on_error(self):
        import sys

        before = sys.stdout
        with self.assertRaises(ValueError):
            with gradelib.capture_stdout() as out:
                print("kept")
                raise ValueError
        self.assertIs(sys.stdout, before)
        self.assertEqual(out.getvalue(), "kept\n")


class TranslationTest(unittest.TestCase):
    def test_messages_go_through_the_installed_underscore(self):
        with translator(lambda message: "<<" + message + ">>"):
            complaint = gradelib.required_substring("for")("x = 1")
        self.assertEqual(complaint, "<<Your code should contain '{0}'.>>".replace("{0}", "for"))

    def test_without_underscore_messages_are_untranslated(self):
        self.assertEqual(gradelib.required_substring("for")("x"), "Your code should contain 'for'.")


if __name__ == "__main__":
    unittest.main()
