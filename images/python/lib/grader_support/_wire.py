"""Length-prefixed JSON frames between the supervisor and its child processes.

A frame is ``<decimal length>\\n<length bytes of UTF-8 JSON>``. Strings may hold
lone surrogates (Python text can), so they travel with ``surrogatepass``. The
reader bounds size and time, so a frame from an untrusted child cannot exhaust
memory or hang the supervisor; what it decodes is plain data (dict, list, str,
numbers) and must still be validated by the caller.
"""

import json
import os
import select
import time

_HEADER_MAX = 20
_dumps = json.dumps  # bound once: later monkey-patching of json does not reach us
_loads = json.loads


class WireError(Exception):
    """A frame could not be read; ``reason`` is eof, ended, timeout, too_large or malformed."""

    def __init__(self, reason, detail=""):
        Exception.__init__(self, "%s%s" % (reason, ": " + detail if detail else ""))
        self.reason = reason


def encode(message):
    body = _dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return b"%d\n" % len(body) + body


def write_frame(fd, message, deadline=None):
    """Write one frame; raises WireError("timeout") or OSError (e.g. reader gone)."""
    data = memoryview(encode(message))
    if deadline is not None:
        os.set_blocking(fd, False)
    while data:
        if deadline is not None:
            _wait(fd, for_write=True, deadline=deadline)
        try:
            written = os.write(fd, data[:65536])
        except BlockingIOError:
            continue
        data = data[written:]


def read_frame(fd, limit, deadline=None, writer_alive=None):
    """Read one frame of at most ``limit`` body bytes and decode it.

    ``writer_alive()`` is polled while waiting; once it returns False, whatever
    is already in the pipe is drained and the frame must be complete, so a
    process that exits leaves nothing to wait for even if a stray child keeps
    the pipe open.
    """
    reader = _Reader(fd, deadline, writer_alive)
    header = reader.until_newline(_HEADER_MAX)
    if not header.isdigit():
        raise WireError("malformed", "bad frame header")
    length = int(header)
    if length > limit:
        raise WireError("too_large", "%d bytes (limit %d)" % (length, limit))
    body = reader.exactly(length)
    try:
        return _loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as error:
        raise WireError("malformed", str(error)[:200])


class _Reader:
    def __init__(self, fd, deadline, writer_alive):
        self.fd = fd
        self.deadline = deadline
        self.writer_alive = writer_alive
        self.buffer = bytearray()
        self.draining = False

    def until_newline(self, max_len):
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                header = bytes(self.buffer[:newline])
                del self.buffer[:newline + 1]
                return header
            if len(self.buffer) > max_len:
                raise WireError("malformed", "frame header too long")
            self._fill(max_len + 1 - len(self.buffer))

    def exactly(self, length):
        while len(self.buffer) < length:
            self._fill(min(length - len(self.buffer), 1 << 20))
        data = bytes(self.buffer[:length])
        del self.buffer[:length]
        return data

    def _fill(self, wanted):
        while True:
            if self.draining:
                try:
                    chunk = os.read(self.fd, wanted)
                except BlockingIOError:
                    raise WireError("ended", "writer exited before a complete frame")
            else:
                if not self._readable():
                    continue
                chunk = os.read(self.fd, wanted)
            if not chunk:
                raise WireError("eof", "pipe closed before a complete frame")
            self.buffer += chunk
            return

    def _readable(self):
        """Wait a slice for data; switch to draining once the writer is gone."""
        slice_end = None
        if self.writer_alive is not None:
            slice_end = time.monotonic() + 0.05
        end = _earliest(self.deadline, slice_end)
        if _wait(self.fd, for_write=False, deadline=end, raise_on_timeout=False):
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WireError("timeout")
        if self.writer_alive is not None and not self.writer_alive():
            os.set_blocking(self.fd, False)
            self.draining = True
        return False


def _earliest(*times):
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _wait(fd, for_write, deadline, raise_on_timeout=True):
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    if for_write:
        ready = select.select([], [fd], [], timeout)[1]
    else:
        ready = select.select([fd], [], [], timeout)[0]
    if not ready and raise_on_timeout:
        raise WireError("timeout")
    return bool(ready)
