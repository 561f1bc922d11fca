"""The Docker engine as the benchmark sees it: its version, the image, and the container events that
time every container's lifecycle the same way whoever drove it (watcher, driver or CLI)."""
import http.client
import json
import socket
import urllib.parse
from collections import defaultdict
from typing import Dict, List, Optional

API = "/v1.41"
WATCHER_LABEL = "org.openedx.xqueue-watcher.watcher"
SUBMISSION_LABEL = "org.openedx.xqueue-watcher.submission"


class EngineError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self._socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._socket_path)


class Engine:
    def __init__(self, socket_path: str = "/var/run/docker.sock"):
        self.socket_path = socket_path

    def request(self, method: str, path: str, timeout: float = 30):
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            connection.request(method, API + path)
            reply = connection.getresponse()
            return reply.status, reply.read()
        except OSError as error:
            raise EngineError(f"Docker engine on {self.socket_path}: {method} {path}: {error}") from None
        finally:
            connection.close()

    def get_json(self, path: str):
        status, body = self.request("GET", path)
        if status != 200:
            raise EngineError(f"Docker engine: GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def describe(self) -> dict:
        version = self.get_json("/version")
        info = self.get_json("/info")
        return {"version": version.get("Version", "?"), "default_runtime": info.get("DefaultRuntime", "?"),
                "cgroup_version": info.get("CgroupVersion", "?"), "storage_driver": info.get("Driver", "?"),
                "kernel": info.get("KernelVersion", "?"), "cpus": info.get("NCPU", 0)}

    def has_image(self, image: str) -> bool:
        status, _ = self.request("GET", f"/images/{urllib.parse.quote(image, safe='')}/json")
        return status == 200

    def events(self, watcher_id: str, since: float, until: float) -> List[dict]:
        """Container events of one watcher id between two wall-clock times (the engine's clock)."""
        filters = json.dumps({"type": ["container"], "label": [f"{WATCHER_LABEL}={watcher_id}"]})
        query = urllib.parse.urlencode({"since": f"{since:.6f}", "until": f"{until:.6f}", "filters": filters})
        status, body = self.request("GET", f"/events?{query}", timeout=60)
        if status != 200:
            raise EngineError(f"Docker engine: events: {status} {body[:300]!r}")
        decoder, events, text, at = json.JSONDecoder(), [], body.decode(), 0
        while at < len(text):
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                break
            event, at = decoder.raw_decode(text, at)
            events.append(event)
        return events

    def containers(self, watcher_id: str) -> List[dict]:
        """Every container (any state) labelled with `watcher_id`."""
        filters = json.dumps({"label": [f"{WATCHER_LABEL}={watcher_id}"]})
        return self.get_json("/containers/json?all=1&filters=" + urllib.parse.quote(filters))

    def remove_labelled(self, watcher_id: str) -> int:
        """Removes every container this benchmark labelled with `watcher_id` (ours only)."""
        containers = self.containers(watcher_id)
        for container in containers:
            self.request("DELETE", f"/containers/{container['Id']}?force=1&v=1")
        return len(containers)


# The lifecycle events the report shows, in order; "job" is the job signal (SIGWINCH, the Python image's
# label) that a container started before its submission gets when the watcher hands it the job (pre-start).
LIFECYCLE = ("create", "start", "die", "destroy")
JOB_SIGNAL = "28"
MADE_AHEAD = ("waiting", "precreated")  # submission label of containers made before their submission


def lifecycles(events: List[dict], container_of: Optional[Dict[str, str]] = None) -> Dict[str, Dict[str, float]]:
    """submission id -> {"create": t, "start": t, "job": t, "die": t, "destroy": t} (wall seconds), one
    container each. A container is a submission's by its submission label, or, for one made before its
    submission (labelled "waiting" or "precreated"), by `container_of` (submission id -> container id prefix,
    from the watcher's log). A submission graded twice (re-served) keeps its last container.
    """
    by_container: Dict[str, Dict[str, float]] = defaultdict(dict)
    submission_of: Dict[str, Optional[str]] = {}
    for event in events:
        action = event.get("Action") or event.get("status")
        container = event.get("id") or event.get("Actor", {}).get("ID")
        attributes = event.get("Actor", {}).get("Attributes", {})
        if action == "kill" and attributes.get("signal") == JOB_SIGNAL:
            action = "job"
        if action not in LIFECYCLE and action != "job":
            continue
        submission_of[container] = attributes.get(SUBMISSION_LABEL, submission_of.get(container))
        by_container[container].setdefault(action, event["timeNano"] / 1e9)
    for submission, prefix in (container_of or {}).items():
        for container in by_container:
            if container.startswith(prefix):
                submission_of[container] = submission
    out: Dict[str, Dict[str, float]] = {}
    for container, times in sorted(by_container.items(), key=lambda item: item[1].get("create", 0)):
        if submission_of.get(container) not in (None, *MADE_AHEAD):
            out[submission_of[container]] = times
    return out
