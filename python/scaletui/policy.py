"""The policy side of ``scaletui --driver exec:CMD`` and ``--driver http:URL``.

scaletui sends one JSON observation per tick (the figures of the advisor's context, named as
the CSV's columns: ``current_replicas``, ``min_replicas``, ``max_replicas``, ``baseline`` — the
HPA algorithm's answer —, ``cpu_utilization``, ``rps``, ``latency_p95_ms``, ``history``, …) and
takes one answer ``{"replicas": N, "reasoning": "..."}``. A late, garbled or out-of-range answer
gets the run's fallback, named in the row.

    from scaletui.policy import serve

    def decide(obs):
        return obs["baseline"] or obs["current_replicas"]

    serve(decide)            # exec: one JSON object per line on stdin/stdout
    serve_http(decide, 8000) # http: POST /  (any path)

``decide`` returns an int, or a dict with ``replicas`` and ``reasoning``, or
``(replicas, reasoning)``. Standard library only.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

Answer = Union[int, dict, tuple]


def answer(result: Answer) -> dict:
    """The answer object for what ``decide`` returned."""
    if isinstance(result, dict):
        return result
    if isinstance(result, tuple):
        replicas, reasoning = result
        return {"replicas": int(replicas), "reasoning": str(reasoning)}
    return {"replicas": int(result), "reasoning": ""}


def serve(decide: Callable[[dict], Answer], stdin=None, stdout=None) -> None:
    """Answer observations read from stdin, one line each, until stdin closes."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        obs = json.loads(line)
        stdout.write(json.dumps(answer(decide(obs))) + "\n")
        stdout.flush()


def serve_http(decide: Callable[[dict], Answer], port: int = 8000, host: str = "127.0.0.1") -> None:
    """Answer observations POSTed to ``http://host:port/`` until interrupted."""
    server = http_server(decide, port, host)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def http_server(decide: Callable[[dict], Answer], port: int = 8000, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """The server of :func:`serve_http`, not yet serving (port 0: a free one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            try:
                n = int(self.headers.get("Content-Length", "0"))
                obs: Any = json.loads(self.rfile.read(n))
                body = json.dumps(answer(decide(obs))).encode()
                code = 200
            except Exception as e:  # the caller sees the reason in its fallback note
                body = json.dumps({"error": str(e)}).encode()
                code = 500
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)
