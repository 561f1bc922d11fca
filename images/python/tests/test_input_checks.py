"""gradelib's input checks: each returns None or the complaint shown to the student."""

import unittest

import gradelib

LOOP = """\
# while loops are not allowed here
def total(items):
    s = "while"
    result = 0
    for item in items:
        result += item
    return result
"""


class SubstringChecksTest(unittest.TestCase):
    def test_required_substring(self):
        check = gradelib.required_substring("for ")
        self.assertIsNone(check(LOOP))
        self.assertEqual(check("x = 1"), "Your code should contain 'for '.")
        self.assertEqual(gradelib.required_substring("zz", "custom")("x"), "custom")

    def test_prohibited_substring_sees_comments_too(self):
        check = gradelib.prohibited_substring("while")
        self.assertEqual(check(LOOP), "Your code should not contain 'while'.")
        self.assertIsNone(check("for x in y: pass"))
        self.assertEqual(gradelib.prohibited_substring("for", "no for")(LOOP), "no for")

    def test_substring_occurs_bounds(self):
        self.assertIsNone(gradelib.substring_occurs("result", at_least=3, at_most=3)(LOOP))
        self.assertEqual(gradelib.substring_occurs("result", exactly=2)(LOOP),
                         "Your code has 'result' 3 times, must be exactly 2.")
        self.assertEqual(gradelib.substring_occurs("result", at_least=4)(LOOP),
                         "Your code has 'result' 3 times, must be at least 4.")
        self.assertEqual(gradelib.substring_occurs("result", at_most=2)(LOOP),
                         "Your code has 'result' 3 times, can't be more than 2.")
        self.assertEqual(gradelib.substring_occurs("result", exactly=0, error_msg="no")(LOOP), "no")

    def test_substring_occurs_ignore_spacing(self):
        code = "x=a +b\ny = a+ b"
        self.assertEqual(gradelib.substring_occurs("a + b", exactly=2)(code),
                         "Your code has 'a + b' 0 times, must be exactly 2.")
        self.assertIsNone(gradelib.substring_occurs("a + b", exactly=2, ignore_spacing=True)(code))

    def test_substring_occurs_if_condstring(self):
        check = gradelib.substring_occurs_if_condstring("return", "def", at_least=2)
        self.assertIsNone(check("x = 1"))
        self.assertIsNotNone(check("def f(): return 1"))


class TokenChecksTest(unittest.TestCase):
    def test_keywords_in_comments_and_strings_do_not_count(self):
        self.assertIsNone(gradelib.prohibited_keyword("while")(LOOP))
        self.assertEqual(gradelib.prohibited_keyword("for")(LOOP),
                         'Your code cannot make use of the "for" keyword.')
        self.assertEqual(gradelib.required_keyword("while")(LOOP),
                         'Your code must make use of the "while" keyword.')
        self.assertIsNone(gradelib.required_keyword("for")(LOOP))

    def test_f_string_text_does_not_count(self):
        code = 'name = "x"\nmessage = f"{name}while"\nother = f"for"\n'
        self.assertIsNone(gradelib.prohibited_keyword("while")(code))
        self.assertIsNone(gradelib.prohibited_keyword("for")(code))

    def test_operators_are_tokens(self):
        self.assertIsNone(gradelib.required_operator("+=")(LOOP))
        self.assertEqual(gradelib.prohibited_operator("+=", "no +=")(LOOP), "no +=")
        self.assertIsNone(gradelib.prohibited_operator("**")(LOOP))

    def test_one_of_required_keywords(self):
        self.assertIsNone(gradelib.one_of_required_keywords(["while", "for"])(LOOP))
        self.assertEqual(gradelib.one_of_required_keywords(["while", "lambda"])(LOOP),
                         "Your code must make use of at least one of the following keywords: "
                         "['while', 'lambda'].")

    def test_token_occurs(self):
        self.assertIsNone(gradelib.token_occurs("result", exactly=3)(LOOP))
        self.assertEqual(gradelib.token_occurs("while", at_least=1)(LOOP),
                         "Your code has 'while' 0 times, must be at least 1.")

    def test_untokenizable_code_counts_what_was_seen(self):
        broken = 'for x in y:\n    s = """never closed\n'
        self.assertEqual(gradelib.required_keyword("for")(broken), None)
        self.assertIsNotNone(gradelib.required_keyword("while")(broken))

    def test_count_non_comment_lines(self):
        self.assertIsNone(gradelib.count_non_comment_lines(exactly=6)(LOOP))
        self.assertEqual(gradelib.count_non_comment_lines(at_most=5)(LOOP),
                         "Your code has None 6 times, can't be more than 5.")
        docstring = 'def f():\n    """Doc\n    string."""\n\n    # note\n    return 1\n'
        self.assertIsNone(gradelib.count_non_comment_lines(exactly=2)(docstring))
        self.assertIsNone(gradelib.count_non_comment_lines(at_most=3)('x = """unclosed\n'))


class InputCheckOrTest(unittest.TestCase):
    def test_passes_when_any_check_passes(self):
        check = gradelib.input_check_or("use a loop or sum()", gradelib.required_keyword("while"),
                                        gradelib.required_substring("sum("))
        self.assertEqual(check(LOOP), "use a loop or sum()")
        self.assertIsNone(check("total = sum(items)"))


class DefinitionChecksTest(unittest.TestCase):
    def test_must_define_function(self):
        self.assertIsNone(gradelib.must_define_function("total")(LOOP))
        self.assertEqual(gradelib.must_define_function("tot")(LOOP),
                         "Your code must define a function named 'tot'.")
        self.assertEqual(gradelib.must_define_function("f", "define f")("x"), "define f")

    def test_prohibited_function_definition(self):
        self.assertEqual(gradelib.prohibited_function_definition("total")(LOOP),
                         "Your code should NOT define a function named 'total'.")
        self.assertIsNone(gradelib.prohibited_function_definition("totals")(LOOP))

    def test_must_define_class(self):
        self.assertIsNone(gradelib.must_define_class("Queue")("class Queue(object):\n    pass"))
        self.assertEqual(
            gradelib.must_define_class("Queue")("class  Queue:\n    pass"),
            "Your code must define a class named 'Queue'. Be sure you only have one space between "
            "the keyword 'class' and the class name.")


STACK = """\
class Stack:
    def push(self, item):  # def size(self) in a comment
        pass

class Other:
    def pop(self):
        pass
"""


class ClassMethodChecksTest(unittest.TestCase):
    def test_required_class_method(self):
        self.assertIsNone(gradelib.required_class_method("Stack", "push")(STACK))
        self.assertEqual(gradelib.required_class_method("Stack", "pop")(STACK),
                         "The class named 'Stack' should define a method named pop.")
        self.assertEqual(gradelib.required_class_method("Stack", "size")(STACK),
                         "The class named 'Stack' should define a method named size.")
        self.assertEqual(gradelib.required_class_method("Stack", "pop", "need pop")(STACK), "need pop")

    def test_prohibited_class_method(self):
        self.assertIsNone(gradelib.prohibited_class_method("Stack", "size")(STACK))
        self.assertIsNone(gradelib.prohibited_class_method("Stack", "pop")(STACK))
        self.assertEqual(gradelib.prohibited_class_method("Stack", "push")(STACK),
                         "The class named 'Stack' should not define a method named push.")

    def test_prohibited_class_method_in_a_derived_class_is_not_counted(self):
        code = "class Base:\n    pass\nclass Derived(Base):\n    def peek(self):\n        pass\n"
        self.assertIsNone(gradelib.prohibited_class_method("Base", "peek")(code))


if __name__ == "__main__":
    unittest.main()
