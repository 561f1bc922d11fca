"""Input checks on the source text (run before any code): keyword checks ignore
comments and strings."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("count_vowels"))
grader.add_input_check(gradelib.required_keyword("for"))
grader.add_input_check(gradelib.prohibited_keyword("while"))
grader.add_input_check(gradelib.one_of_required_keywords(["in", "range"]))
grader.add_input_check(gradelib.input_check_or(
    "Count with an accumulator (+=) or with str.count().",
    gradelib.required_substring("+="),
    gradelib.required_substring(".count(")))
grader.add_input_check(gradelib.substring_occurs("return", at_least=1, at_most=2))
grader.add_input_check(gradelib.substring_occurs("def count_vowels(", exactly=1, ignore_spacing=True))
grader.add_input_check(gradelib.token_occurs(
    "print", exactly=0, error_msg="Return the count; do not print it."))
grader.add_input_check(gradelib.count_non_comment_lines(at_most=10))

for text in ["banana", "Rhythm", "AEIOU and sometimes y", ""]:
    grader.add_test(gradelib.InvokeStudentFunctionTest("count_vowels", [text]))
