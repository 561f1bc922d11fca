"""The fault switches (POST /_standin/faults): which endpoint answers an HTTP error, sleeps, drops
the connection, loses its reply or refuses a result, and for how many requests. Faults holds them;
StandinState owns one, read under its lock; the request handler applies them. README.md "Faults".
"""

from typing import Dict, Optional

# openedx/xqueue's external interface: the endpoint names requests are counted and faults keyed by.
ENDPOINTS = ("login", "logout", "status", "get_submission", "get_queuelen", "put_result")
FAULT_ENDPOINTS = ENDPOINTS + ("media",)  # "media": the LMS's file URLs (LMS mode)
FAULT_KINDS = ("http_error", "delay", "drop", "lose_reply", "incorrect_key", "conflict")


class Faults:
    """Runtime fault switches; every read that applies a switch consumes one of its `times`."""

    def __init__(self):
        self._switches: Dict[str, Dict[str, dict]] = {kind: {} for kind in FAULT_KINDS}

    def clear(self):
        for kind in FAULT_KINDS:
            self._switches[kind].clear()

    def update(self, kind: str, spec):
        if kind in ("incorrect_key", "conflict"):
            spec = {"put_result": spec}
        if spec is None or spec is False:
            self._switches[kind].clear()
            return
        if not isinstance(spec, dict):
            raise ValueError(f"fault '{kind}' needs an object keyed by endpoint")
        for endpoint, value in spec.items():
            if endpoint != "*" and endpoint not in FAULT_ENDPOINTS:
                raise ValueError(f"fault '{kind}': unknown endpoint '{endpoint}'")
            entry = self._normalise(kind, value)
            if entry is None:
                self._switches[kind].pop(endpoint, None)
            else:
                self._switches[kind][endpoint] = entry

    @staticmethod
    def _normalise(kind: str, value) -> Optional[dict]:
        times = None
        if isinstance(value, dict):
            times = value.get("times")
            if times is not None and (not isinstance(times, int) or times < 0):
                raise ValueError(f"fault '{kind}': times must be a non-negative integer")
            value = {"http_error": value.get("status"), "delay": value.get("seconds")}.get(kind, True)
        if value is None or value is False or value == 0 or times == 0:
            return None
        if kind == "http_error" and (not isinstance(value, int) or isinstance(value, bool)
                                     or not 100 <= value <= 599):
            raise ValueError("fault 'http_error' needs an HTTP status between 100 and 599")
        if kind == "delay" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError("fault 'delay' needs a number of seconds")
        if kind in ("drop", "lose_reply", "incorrect_key", "conflict"):
            value = True
        return {"value": value, "times": times}

    def take(self, kind: str, endpoint: str):
        switches = self._switches[kind]
        key = endpoint if endpoint in switches else ("*" if "*" in switches else None)
        if key is None:
            return None
        entry = switches[key]
        if entry["times"] is not None:
            entry["times"] -= 1
            if entry["times"] <= 0:
                del switches[key]
        return entry["value"]

    def snapshot(self) -> dict:
        return {kind: {ep: dict(entry) for ep, entry in switches.items()}
                for kind, switches in self._switches.items()}
