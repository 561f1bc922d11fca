"""The control API (/_standin/, not part of XQueue): what tests, the demo and the benchmark use to
queue submissions, read results, submissions, queues and request counts, set fault switches and
reconfigure or reset the stand-in. JSON in and out, no login, never subject to faults. Each
endpoint is a function of the request handler; ROUTES maps (method, first path part) to it.
README.md "Control API".
"""

import json
import threading
import time
import urllib.parse

from . import lms_state
from .faults import FAULT_KINDS, Faults
from .state import file_from_spec

CONTROL_PREFIX = "/_standin/"


def handle(handler, url, body: bytes):
    """Every request under /_standin/: JSON in and out; a bad request is a 400 with its reason."""
    path = url.path[len(CONTROL_PREFIX):].strip("/")
    query = dict(urllib.parse.parse_qsl(url.query))
    try:
        payload = json.loads(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("the request body must be a JSON object")
        route = ROUTES.get((handler.command, path.split("/")[0]))
        if route is None:
            handler._json(404, {"error": f"no control endpoint {handler.command} /_standin/{path}"})
            return
        status, reply, after = route(handler, path, query, payload)
    except (ValueError, TypeError, KeyError) as err:
        handler._json(400, {"error": str(err)})
        return
    if after is not None:
        handler.close_connection = True
    if isinstance(reply, (bytes, str)):
        handler._reply(status, reply, "application/octet-stream")
    else:
        handler._json(status, reply)
    if after is not None:
        after()


def _health(handler, path, query, payload):
    return 200, {"ok": True, "port": handler.standin.port}, None


def _submit(handler, path, query, payload):
    queue = payload["queue"]
    if not isinstance(queue, str) or not queue:
        raise ValueError("'queue' must be a non-empty string")
    count = payload.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError("'count' must be a positive integer")
    ids = []
    for _ in range(count):
        sid = handler.state.new_id()
        if handler.standin.config.mode == "lms":
            body, files, extra = lms_state.build_submission(handler.standin, handler.state, sid, queue,
                                                            payload)
        else:
            (body, files), extra = _build_submission(handler, sid, payload), {}
        handler.state.add_submission(sid, queue, body, files, **extra)
        ids.append(sid)
    return 200, {"submission_id": ids[0], "submission_ids": ids, "queue": queue,
                 "xqueue_body": body, "xqueue_files": files}, None


def _build_submission(handler, sid: int, payload: dict):
    """The strings the LMS would have queued: capa's CodeResponse body and its file URL map."""
    files = payload.get("files") or {}
    if not isinstance(files, dict):
        raise ValueError("'files' must be an object {name: url | {\"content\": text}}")
    urls = {}
    for name, spec in files.items():
        if isinstance(spec, dict):
            stored = file_from_spec(name, spec)
            with handler.state.lock:
                handler.state.files[(sid, name)] = stored
            urls[name] = f"{handler.standin.base_url}/_standin/files/{sid}/{urllib.parse.quote(name)}"
        else:
            urls[name] = str(spec)
    xqueue_files = json.dumps(urls)
    if "xqueue_body" in payload:
        raw = payload["xqueue_body"]
        return (raw if isinstance(raw, str) else json.dumps(raw)), xqueue_files
    grader_payload = payload.get("grader_payload", "")
    if not isinstance(grader_payload, str):
        grader_payload = json.dumps(grader_payload)
    student_info = payload.get("student_info")
    if student_info is None:
        student_info = {"anonymous_student_id": f"student-{sid}",
                        "submission_time": time.strftime("%Y%m%d%H%M%S", time.gmtime()),
                        "random_seed": sid}
    if not payload.get("student_info_as_object", False):
        student_info = json.dumps(student_info)
    body = {"grader_payload": grader_payload, "student_info": student_info,
            "student_response": payload.get("student_response", "")}
    return json.dumps(body), xqueue_files


def _results(handler, path, query, payload):
    queue = query.get("queue")
    with handler.state.lock:
        results = [dict(r) for r in handler.state.results if queue is None or r["queue"] == queue]
        rejected = [dict(r) for r in handler.state.rejected]
    return 200, {"results": results, "rejected": rejected}, None


def _submissions(handler, path, query, payload):
    now, delay = time.monotonic(), handler.standin.config.processing_delay
    parts = path.split("/")
    with handler.state.lock:
        if len(parts) == 1:
            described = [s.describe(now, delay) for s in handler.state.submissions.values()]
            return 200, {"submissions": described}, None
        sub = handler.state.submissions.get(int(parts[1]))
        if sub is None:
            return 404, {"error": f"no submission {parts[1]}"}, None
        return 200, sub.describe(now, delay), None


def _queues(handler, path, query, payload):
    return 200, {"queues": handler.state.queue_summary()}, None


def _requests(handler, path, query, payload):
    return 200, handler.state.request_summary(with_log=query.get("log", "1") != "0"), None


def _files(handler, path, query, payload):
    parts = path.split("/", 2)
    with handler.state.lock:
        stored = None
        if len(parts) == 3:
            stored = handler.state.files.get((int(parts[1]), urllib.parse.unquote(parts[2])))
    if stored is None:
        return 404, {"error": f"no file /_standin/{path}"}, None
    if stored.delay:
        time.sleep(stored.delay)
    if stored.http_error:
        return stored.http_error, {"error": f"file option http_error {stored.http_error}"}, None
    return 200, stored.data, None


def _faults_get(handler, path, query, payload):
    return 200, handler.standin.faults_snapshot(), None


def _faults_post(handler, path, query, payload):
    unknown = set(payload) - set(FAULT_KINDS) - {"clear", "drop_sessions", "refuse_connections"}
    if unknown:
        raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}")
    refuse = payload.get("refuse_connections")
    if refuse is not None and (isinstance(refuse, bool) or not isinstance(refuse, (int, float))
                               or refuse < 0):
        raise ValueError("'refuse_connections' takes a number of seconds")
    scratch = Faults()  # validate every switch before applying any
    for kind in FAULT_KINDS:
        if kind in payload:
            scratch.update(kind, payload[kind])
    with handler.state.lock:
        if payload.get("clear"):
            handler.state.faults.clear()
        for kind in FAULT_KINDS:
            if kind in payload:
                handler.state.faults.update(kind, payload[kind])
    if payload.get("drop_sessions"):
        handler.state.drop_sessions()
    after = None
    if refuse:
        handler.state.refused_until = time.time() + refuse
        after = lambda: threading.Thread(target=handler.standin.refuse_connections, args=(refuse,),
                                         daemon=True).start()
    return 200, handler.standin.faults_snapshot(), after


def _config_get(handler, path, query, payload):
    return 200, handler.standin.config_snapshot(), None


def _config_post(handler, path, query, payload):
    handler.standin.reconfigure(payload)
    return 200, handler.standin.config_snapshot(), None


def _reset(handler, path, query, payload):
    handler.state.reset(sessions=bool(payload.get("sessions", False)),
                        faults=bool(payload.get("faults", True)))
    return 200, {"ok": True}, None


ROUTES = {
    ("GET", "health"): _health,
    ("POST", "submit"): _submit,
    ("GET", "results"): _results,
    ("GET", "submissions"): _submissions,
    ("GET", "queues"): _queues,
    ("GET", "requests"): _requests,
    ("GET", "files"): _files,
    ("GET", "faults"): _faults_get,
    ("POST", "faults"): _faults_post,
    ("GET", "config"): _config_get,
    ("POST", "config"): _config_post,
    ("POST", "reset"): _reset,
}
