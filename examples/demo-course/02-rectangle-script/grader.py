"""Script-style code: wrap_in_string, ExecWrappedStudentCodeTest, exec_wrapped_code,
exec_code_and_inspect_values and required_substring."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.required_substring("print"))
grader.add_preprocessor(gradelib.wrap_in_string)

grader.add_test(gradelib.ExecWrappedStudentCodeTest({"width": 3, "height": 4}, "A 3 by 4 rectangle"))
grader.add_test(gradelib.Test(
    gradelib.exec_wrapped_code({"width": 2.5, "height": 2}, post_process=str.lower),
    "A 2.5 by 2 rectangle (upper/lower case does not matter)"))
grader.add_test(gradelib.Test(
    gradelib.exec_code_and_inspect_values({"width": 10, "height": 10}, ["area"]),
    "The value of area for a 10 by 10 rectangle"))
