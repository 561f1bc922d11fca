"""Translations: `_` is installed from conf/locale before this file loads, in the
language of the job ("lang"); gradelib's own messages are translated too."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("greet"))
grader.add_input_check(gradelib.required_keyword("return", _("Your function must return the greeting.")))

for name in ["Ada", "Grace"]:
    grader.add_test(gradelib.InvokeStudentFunctionTest(
        "greet", [name], short_desc=_("Greeting {name}").format(name=name),
        detailed_desc=_("The greeting starts with the word Hello.")))
