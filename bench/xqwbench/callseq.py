"""The engine's own CPU (dockerd + containerd) per container for different sequences of engine calls on
the same short container: what following the output, `inspect` or `attach` cost the engine beside the
minimal create, start, wait, logs, remove that the floors use (docs/performance.md, issue 13)."""
import argparse
import dataclasses
import json
import socket
import statistics
from typing import Callable, Dict, List

from xqwbench import procfs
from xqwbench.engine import API, WATCHER_LABEL

LABEL_VALUE = "xqw-bench-engine-calls"
# One result line on stdout and one line on stderr, as a grader container prints them.
PRINTS = "echo '{\"correct\": true, \"score\": 1}'; echo 'xqw-usage: {}' >&2"


class Connection:
    """One kept-alive HTTP/1.1 connection to the engine's unix socket, as the watcher keeps one."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.sock = self._connect()

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(60)
        sock.connect(self.socket_path)
        return sock

    def call(self, method: str, path: str, body=None) -> bytes:
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {API}{path} HTTP/1.1\r\nHost: docker\r\nContent-Length: {len(payload)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + payload)
        return self._reply(f"{method} {path}")

    def _reply(self, what: str) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv(what)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "content-length" in headers:
            while len(body) < int(headers["content-length"]):
                body += self._recv(what)
        elif headers.get("transfer-encoding") == "chunked":
            body = self._chunked(body, what)
        if status >= 400:
            raise RuntimeError(f"engine: {what}: {status} {body[:200]!r}")
        return body

    def _chunked(self, data: bytes, what: str) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in data:
                data += self._recv(what)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._recv(what)
            body, data = body + data[:size], data[size + 2:]
            if size == 0:
                return body

    def _recv(self, what: str) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"engine: {what}: connection closed")
        return chunk

    def attach(self, container: str) -> bytes:
        """The container's output through `attach` on a connection of its own (the engine hijacks it)."""
        sock = self._connect()
        try:
            sock.sendall(f"POST {API}/containers/{container}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                         "Host: docker\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            self.call("POST", f"/containers/{container}/start")
            while chunk := sock.recv(65536):
                data += chunk
            return data
        finally:
            sock.close()


def spec(image: str) -> dict:
    return {"Image": image, "Entrypoint": ["/bin/sh", "-c", PRINTS], "Cmd": [], "User": "65534:65534",
            "NetworkDisabled": True, "Labels": {WATCHER_LABEL: LABEL_VALUE},
            "HostConfig": {"NetworkMode": "none", "ReadonlyRootfs": True, "Memory": 256 << 20,
                           "PidsLimit": 64, "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                           "Tmpfs": {"/tmp": "size=64m"},
                           "LogConfig": {"Type": "json-file", "Config": {"max-size": "2000000", "max-file": "1"}}}}


def _create(engine: Connection, image: str) -> str:
    return json.loads(engine.call("POST", "/containers/create", spec(image)))["Id"]


def _remove(engine: Connection, container: str):
    engine.call("DELETE", f"/containers/{container}?force=1&v=1")


def floor_calls(engine: Connection, image: str):
    """The floors' sequence: create, start, wait, logs, remove."""
    container = _create(engine, image)
    engine.call("POST", f"/containers/{container}/start")
    engine.call("POST", f"/containers/{container}/wait")
    engine.call("GET", f"/containers/{container}/logs?stdout=1&stderr=1")
    _remove(engine, container)


def watcher_calls(engine: Connection, image: str, inspect: bool = True):
    """The watcher's: create, start, follow the output to its end, wait, inspect, remove."""
    container = _create(engine, image)
    engine.call("POST", f"/containers/{container}/start")
    engine.call("GET", f"/containers/{container}/logs?follow=1&stdout=1&stderr=1")
    engine.call("POST", f"/containers/{container}/wait")
    if inspect:
        engine.call("GET", f"/containers/{container}/json")
    _remove(engine, container)


def watcher_calls_without_inspect(engine: Connection, image: str):
    watcher_calls(engine, image, inspect=False)


def attach_calls(engine: Connection, image: str):
    """Attach before start (as `docker run` does), read to the end, wait, remove."""
    container = _create(engine, image)
    engine.attach(container)
    engine.call("POST", f"/containers/{container}/wait")
    _remove(engine, container)


SEQUENCES: Dict[str, Callable[[Connection, str], None]] = {
    "create start wait logs remove (floors)": floor_calls,
    "create start logs-follow wait inspect remove (watcher)": watcher_calls,
    "the watcher's without inspect": watcher_calls_without_inspect,
    "create attach start wait remove": attach_calls,
}


@dataclasses.dataclass
class Figures:
    per_container_ms: Dict[str, List[float]]

    def lines(self) -> List[str]:
        width = max(len(name) for name in self.per_container_ms)
        out = [f"{'engine calls':<{width}}  daemons' CPU per container (ms): median, min, max"]
        for name, values in self.per_container_ms.items():
            out.append(f"{name:<{width}}  {statistics.median(values):6.1f} {min(values):6.1f} {max(values):6.1f}")
        return out


def measure(image: str, rounds: int, per_round: int, socket_path: str) -> Figures:
    """`rounds` alternations of every sequence, `per_round` containers each, one after another."""
    daemons = procfs.engine_daemon_pids()
    engine = Connection(socket_path)
    figures = Figures({name: [] for name in SEQUENCES})
    try:
        for _ in range(rounds):
            for name, sequence in SEQUENCES.items():
                before = sum(procfs.process_cpu(pid) for pid in daemons)
                for _ in range(per_round):
                    sequence(engine, image)
                after = sum(procfs.process_cpu(pid) for pid in daemons)
                figures.per_container_ms[name].append((after - before) * 1000 / per_round)
    finally:
        remove_left(engine)
    return figures


def remove_left(engine: Connection) -> int:
    filters = json.dumps({"label": [f"{WATCHER_LABEL}={LABEL_VALUE}"]})
    from urllib.parse import quote

    left = json.loads(engine.call("GET", "/containers/json?all=1&filters=" + quote(filters)))
    for container in left:
        _remove(engine, container["Id"])
    return len(left)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/engine-calls", description=__doc__)
    parser.add_argument("--image", default="xqueue-watcher/python-grader:latest",
                        help="image whose /bin/sh prints the two lines (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=16, help="alternations of the sequences (default 16)")
    parser.add_argument("--per-round", type=int, default=5,
                        help="containers per sequence and round; the daemons' CPU is read in clock ticks "
                             "(10 ms), so a figure is over several containers (default 5)")
    parser.add_argument("--socket", default="/var/run/docker.sock")
    options = parser.parse_args(argv)
    if options.rounds < 1 or options.per_round < 1:
        parser.error("--rounds and --per-round must be at least 1")
    figures = measure(options.image, options.rounds, options.per_round, options.socket)
    print("\n".join(figures.lines()))
    return 0
