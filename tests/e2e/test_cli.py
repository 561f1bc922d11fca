"""The command line: --version, --help, check-config, and refusing to start on a bad config root."""
import os
import subprocess
import tempfile
import unittest

from harness import BINARY, SOURCE_DIR, write_config_root


def run(*args, env=None):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


class CommandLineTest(unittest.TestCase):
    def test_version_and_help(self):
        version = run("--version")
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout, r"^xqueue-watcher \d+\.\d+\.\d+")
        help_text = run("--help")
        self.assertEqual(help_text.returncode, 0)
        for word in ("check-config", "grade", "--config-root", "--log-level", "--log-format"):
            self.assertIn(word, help_text.stdout)

    def test_check_config_accepts_the_repository_demo_config(self):
        result = run("check-config", "-d", SOURCE_DIR)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_check_config_names_file_key_and_reason_for_every_problem(self):
        with tempfile.TemporaryDirectory() as root:
            write_config_root(root, 1, {"q1": {"grader_root": "/nonexistent/course",
                                               "limits": {"memory": "lots", "timeout": "20s"}},
                                        "q2": {"grader_root": root, "connections": 0}})
            result = run("check-config", "-d", root, env={"XQW_TEST_PASSWORD": "x"})
            self.assertNotEqual(result.returncode, 0)
            queues = os.path.join(root, "conf.d", "queues.yaml")
            self.assertIn(queues, result.stdout)
            self.assertIn("queues.q1.grader_root", result.stdout)
            self.assertIn("queues.q1.limits.memory", result.stdout)
            self.assertIn("queues.q2.connections", result.stdout)

    def test_watcher_refuses_to_start_on_an_invalid_config_with_the_same_messages(self):
        with tempfile.TemporaryDirectory() as root:
            write_config_root(root, 1, {"q1": {"grader_root": "/nonexistent/course"}})
            started = run("-d", root, env={"XQW_TEST_PASSWORD": "x"})
            self.assertNotEqual(started.returncode, 0)
            self.assertIn("queues.q1.grader_root", started.stderr)
            self.assertIn("refusing to start", started.stderr)

    def test_unset_password_variable_is_reported(self):
        with tempfile.TemporaryDirectory() as root:
            write_config_root(root, 1, {"q1": {"grader_root": root}})
            env = dict(os.environ)
            env.pop("XQW_TEST_PASSWORD", None)
            result = subprocess.run([BINARY, "check-config", "-d", root], capture_output=True, text=True,
                                    timeout=60, env=env)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("XQW_TEST_PASSWORD", result.stdout)

    def test_missing_config_root_is_a_plain_error(self):
        result = run("-d", "/nonexistent/config-root")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent/config-root", result.stderr)


if __name__ == "__main__":
    unittest.main()
