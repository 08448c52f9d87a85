"""scaletui.policy: the policy side of --driver exec:/http:."""

import io
import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from scaletui import policy


def test_serve_answers_one_line_per_observation():
    inp = io.StringIO('{"current_replicas": 2, "baseline": 3}\n\n{"current_replicas": 5, "baseline": 1}\n')
    out = io.StringIO()
    policy.serve(lambda o: (o["baseline"] + 1, f"from {o['current_replicas']}"), stdin=inp, stdout=out)
    lines = out.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"replicas": 4, "reasoning": "from 2"},
        {"replicas": 2, "reasoning": "from 5"},
    ]


@pytest.mark.parametrize(
    "result,expected",
    [(3, {"replicas": 3, "reasoning": ""}), ((2, "why"), {"replicas": 2, "reasoning": "why"}),
     ({"replicas": 5, "reasoning": "x"}, {"replicas": 5, "reasoning": "x"})],
)
def test_answer_shapes(result, expected):
    assert policy.answer(result) == expected


def test_serve_http_answers_posts_and_reports_errors():
    def decide(o):
        if o.get("fail"):
            raise ValueError("cannot decide")
        return o["baseline"]

    server = policy.http_server(decide, 0)
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        def post(body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/x", data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())

        assert post({"baseline": 6}) == (200, {"replicas": 6, "reasoning": ""})
        with pytest.raises(urllib.error.HTTPError) as e:
            post({"fail": True})
        assert e.value.code == 500
        assert "cannot decide" in json.loads(e.value.read())["error"]
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(server, ThreadingHTTPServer)
