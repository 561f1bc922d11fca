"""Frames between the supervisor and its children: round trips and every way reading fails."""

import os
import time
import unittest

from grader_support import _wire


class PipeTestCase(unittest.TestCase):
    def setUp(self):
        self.read_end, self.write_end = os.pipe()

    def tearDown(self):
        for fd in (self.read_end, self.write_end):
            try:
                os.close(fd)
            except OSError:
                pass


class RoundTripTest(PipeTestCase):
    def test_structures_and_odd_text_survive(self):
        message = {"text": "é€😀\x00\ud800 lone", "list": [1, 2.5, None, True], "nested": {"a": []}}
        _wire.write_frame(self.write_end, message)
        self.assertEqual(_wire.read_frame(self.read_end, limit=1 << 20), message)

    def test_large_frame_with_a_concurrent_reader(self):
        message = {"data": "x" * (3 << 20)}
        pid = os.fork()
        if pid == 0:
            os.close(self.read_end)
            _wire.write_frame(self.write_end, message, deadline=time.monotonic() + 30)
            os._exit(0)
        os.close(self.write_end)
        self.assertEqual(_wire.read_frame(self.read_end, limit=4 << 20, deadline=time.monotonic() + 30),
                         message)
        os.waitpid(pid, 0)


class FailureTest(PipeTestCase):
    def assertReason(self, reason, **read):
        with self.assertRaises(_wire.WireError) as raised:
            _wire.read_frame(self.read_end, **read)
        self.assertEqual(raised.exception.reason, reason)

    def test_too_large_is_refused_before_reading_the_body(self):
        os.write(self.write_end, b"999999\n{")
        self.assertReason("too_large", limit=1000)

    def test_bad_header(self):
        os.write(self.write_end, b"12x\n")
        self.assertReason("malformed", limit=1000)

    def test_endless_header(self):
        os.write(self.write_end, b"1" * 40)
        self.assertReason("malformed", limit=1000)

    def test_body_that_is_not_json(self):
        os.write(self.write_end, b"3\nabc")
        self.assertReason("malformed", limit=1000)

    def test_eof_before_the_frame_ends(self):
        os.write(self.write_end, b"10\n{}")
        os.close(self.write_end)
        self.assertReason("eof", limit=1000)

    def test_timeout(self):
        started = time.monotonic()
        self.assertReason("timeout", limit=1000, deadline=started + 0.2)
        self.assertLess(time.monotonic() - started, 2)

    def test_writer_gone_while_a_copy_of_the_pipe_stays_open(self):
        os.write(self.write_end, b"10\n{")
        started = time.monotonic()
        self.assertReason("ended", limit=1000, deadline=started + 10, writer_alive=lambda: False)
        self.assertLess(time.monotonic() - started, 2)

    def test_writer_gone_after_a_complete_frame_still_delivers_it(self):
        _wire.write_frame(self.write_end, ["done"])
        self.assertEqual(_wire.read_frame(self.read_end, limit=1000, writer_alive=lambda: False), ["done"])


if __name__ == "__main__":
    unittest.main()
