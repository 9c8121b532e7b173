"""The server under hostile and careless clients: odd bodies, broken connections, steady load.

One `rag serve` process serves the whole module, so its memory can be read from /proc and a
crash shows up as a dead process rather than as a failure somewhere later.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import httpx
import pytest

from bench import soak
from rag.server import MAX_BODY
from tests.bad_inputs import CASES
from tests.conftest import ROOT
from tests.test_server import assert_clean_error

LEAKS = ("Traceback", "/work/", "/tmp/", "site-packages", str(ROOT))
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:home|root|usr|var|etc|opt|srv|proc)/|[A-Za-z]:\\\\")
BY_ID = {case: (question, expected) for case, question, expected in CASES}


@pytest.fixture(scope="module")
def server(project):
    with soak.own_server(project) as running:
        yield running


def post(server, content: bytes, headers: dict | None = None) -> httpx.Response:
    """POST raw bytes to /api/ask: the JSON is written here, so odd text reaches the server."""
    headers = {"content-type": "application/json"} if headers is None else headers
    return httpx.post(f"{server.url}/api/ask", content=content, headers=headers, timeout=60)


def encode(body) -> bytes:
    """JSON with non-ASCII escaped, so lone surrogates travel as valid JSON escapes."""
    return json.dumps(body).encode("ascii")


def assert_no_leak(text: str) -> None:
    """Nothing about the server's files or code in a response."""
    for leak in LEAKS:
        assert leak not in text
    assert not ABSOLUTE_PATH.search(text), text[:300]


def without_echo(answer: dict) -> str:
    """The answer's JSON less the fields that echo the question, which may itself name a path."""
    return json.dumps({k: v for k, v in answer.items() if k not in ("question", "searched")})


def outcome(answer: dict) -> str:
    return "abstain" if answer["abstained"] else f"answer {answer['citations'][0]['answer']}"


@pytest.mark.parametrize("case, question, expected", CASES, ids=[c[0] for c in CASES])
def test_table_through_the_api(server, case, question, expected):
    body = encode({"question": question})
    r = post(server, body)
    if expected == "error":
        assert r.status_code == (413 if len(body) > MAX_BODY else 422)
        assert_clean_error(r)
        assert_no_leak(r.text)
    else:
        assert r.status_code == 200, r.text
        assert outcome(r.json()) == expected
        assert_no_leak(without_echo(r.json()))


GRADIO_CASES = ["empty", "10kB", "control-only", "nul-inside", "emoji-around", "script-tag",
                "english", "keywords", "off-topic"]


@pytest.fixture(scope="module")
def gradio(server):
    from gradio_client import Client

    return Client(server.url + "/", verbose=False)


@pytest.mark.parametrize("case", GRADIO_CASES)
def test_table_through_gradio(server, gradio, case):
    from gradio_client.exceptions import AppError

    question, expected = BY_ID[case]
    if expected == "error":
        with pytest.raises(AppError) as raised:
            gradio.predict(question, api_name="/ask")
        message = str(raised.value)
        assert re.fullmatch(r"the question (is empty|is too long \(.*\))", message), message
        assert_no_leak(message)
    else:
        assert outcome(gradio.predict(question, api_name="/ask")) == expected


def test_refused_questions_leave_no_traceback_in_the_log(server, gradio):
    """A client sending empty questions should not be able to fill the log with tracebacks."""
    from gradio_client.exceptions import AppError

    before = soak.tracebacks(server.log)
    with pytest.raises(AppError):
        gradio.predict(" ", api_name="/ask")
    assert_still_serving(server)
    assert soak.tracebacks(server.log) == before


def test_gradio_routes_bound_unannounced_bodies(server):
    """A chunked body with no Content-Length is cut off at the UI's limit too."""
    def chunks():
        yield b'{"data": ["'
        for _ in range(2048):
            yield b"Sahel " * 200
        yield b'"]}'

    r = httpx.post(f"{server.url}/gradio_api/call/ask", content=chunks(),
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413
    assert_clean_error(r)
    assert_still_serving(server)


JSON = {"content-type": "application/json"}
RAW_CASES = [
    ("invalid-utf8", b'{"question": "\xff\xfe Sahel"}', JSON),
    ("invalid-utf8-only", b"\xc3\x28\xa0\xa1", JSON),
    ("truncated", b'{"question": "Sahel"', JSON),
    ("trailing-garbage", b'{"question": "Sahel"} x', JSON),
    ("single-quotes", b"{'question': 'Sahel'}", JSON),
    ("list", b'["Sahel"]', JSON),
    ("string", b'"Sahel"', JSON),
    ("null", b"null", JSON),
    ("number", b"5", JSON),
    ("question-number", b'{"question": 5}', JSON),
    ("question-list", b'{"question": ["a"]}', JSON),
    ("question-object", b'{"question": {"a": 1}}', JSON),
    ("k-text", b'{"question": "Sahel", "k": "abc"}', JSON),
    ("k-negative", b'{"question": "Sahel", "k": -1}', JSON),
    ("k-zero", b'{"question": "Sahel", "k": 0}', JSON),
    ("k-huge", b'{"question": "Sahel", "k": 1000000000}', JSON),
    ("k-bignum", b'{"question": "Sahel", "k": ' + b"9" * 5000 + b"}", JSON),
    ("k-float", b'{"question": "Sahel", "k": 2.5}', JSON),
    ("k-true", b'{"question": "Sahel", "k": true}', JSON),
    ("k-nan", b'{"question": "Sahel", "k": NaN}', JSON),
    ("k-overflow", b'{"question": "Sahel", "k": 1e400}', JSON),
    ("previous-number", b'{"question": "Sahel", "previous": 3}', JSON),
    ("deep-nesting", b"[" * 30_000 + b"]" * 30_000, JSON),
    ("no-content-type", b'{"question": 5}', {}),
    ("no-content-type-garbage", b"question=Sahel", {}),
    ("form-encoded", b"question=Sahel", {"content-type": "application/x-www-form-urlencoded"}),
    ("text-plain", b'{"question": "Sahel"}', {"content-type": "text/plain"}),
]


@pytest.mark.parametrize("raw, headers", [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_malformed_requests_are_4xx(server, raw, headers):
    r = post(server, raw, headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert_clean_error(r)
    assert_no_leak(r.text)


def test_huge_content_length_with_a_small_body(server):
    """Refused from the header alone, without waiting for the bytes that will never come."""
    head = (b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(10**12).encode() + b"\r\n\r\n")
    with connect(server) as s:
        s.sendall(head + b'{"question": "Sahel"}')
        status, body = read_response(s)
    assert status == 413
    assert set(json.loads(body)) == {"error"}
    assert_no_leak(body.decode())
    assert_still_serving(server)


@pytest.mark.parametrize("headers", [{}, {"content-type": "text/plain"},
                                     {"content-type": "application/x-www-form-urlencoded"}])
def test_json_is_read_only_when_declared(server, headers):
    """A valid question without a JSON Content-Type is refused: a cross-site form or a plain
    fetch (no CORS preflight) cannot make the server work."""
    r = post(server, encode({"question": "Que dit Blinken du Sahel ?"}), headers)
    assert r.status_code == 415
    assert "Content-Type: application/json" in r.json()["error"]
    assert_clean_error(r)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/ask", 405),
    ("PUT", "/api/ask", 405),
    ("DELETE", "/api/health", 405),
    ("GET", "/api/x", 404),
    ("POST", "/api/x", 404),
    ("GET", "/api/ask/extra", 404),
    ("GET", "/api/", 404),
    ("POST", "/api/transcript", 405),
    ("GET", "/api/transcripts/data", 404),
    ("GET", "/api/transcript?source=%00", 404),
    ("GET", "/api/transcript?source=/etc/passwd", 404),
    ("GET", "/api/transcript?source=data/../../../etc/passwd", 404),
    ("TRACE", "/api/ask", 405),
    ("OPTIONS", "/api/ask", 405),
    ("PROPFIND", "/api/health", 405),
    ("CONNECT", "/api/transcripts", 405),
    ("TRACE", "/api/x", 404),
    ("BREW", "/api/", 404),
    ("GET", "/api", 404),
    ("POST", "/api", 404),
])
def test_wrong_method_or_api_path(server, method, path, status):
    """Any method, even one HTTP does not define, gets the API's JSON error, never the UI's."""
    r = httpx.request(method, f"{server.url}{path}", timeout=30)
    assert r.status_code == status
    assert_clean_error(r)
    assert_no_leak(r.text)
    if status == 405:
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert allowed and method not in allowed
        for other in allowed - {"HEAD"}:
            assert httpx.request(other, f"{server.url}{path}", timeout=30).status_code != 405


def test_health_answers_head(server):
    """Uptime monitors often check with HEAD."""
    r = httpx.head(f"{server.url}/api/health", timeout=30)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/nothing/here", "/gradio_api/nothing", "/static/x.js",
                                  "/%2e%2e/%2e%2e/etc/passwd", "/file=/etc/shadow"])
def test_unknown_pages_reveal_nothing(server, path):
    r = httpx.get(f"{server.url}{path}", timeout=30)
    assert 400 <= r.status_code < 500
    assert_no_leak(r.text)


def cors_cases():
    """Every path with every origin, including those Gradio's own CORS rules would allow (other
    localhost pages, or any page when served under another host name)."""
    cases = []
    for path in ("/api/health", "/api/transcripts", "/config", "/gradio_api/info"):
        for origin, host in (("http://evil.example", None), ("http://localhost:3000", None),
                             ("http://evil.example", "rag.example.org")):
            cases.append(pytest.param(path, origin, host,
                                      id=f"{path}-{origin}-{host or 'loopback'}"))
    return cases


@pytest.mark.parametrize("path, origin, host", cors_cases())
def test_no_cross_origin_reads_by_default(server, path, origin, host):
    """No origins are configured here, so no other page may read any response."""
    headers = {"origin": origin, **({"host": host} if host else {})}
    r = httpx.get(f"{server.url}{path}", headers=headers, timeout=30)
    assert "access-control-allow-origin" not in r.headers
    preflight = {**headers, "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    r = httpx.options(f"{server.url}{path}", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in r.headers


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def hang_up_after(server, data: bytes) -> None:
    """Send bytes on a fresh connection and close it without reading a reply."""
    with connect(server) as s:
        s.sendall(data)


def request_bytes(body: dict) -> bytes:
    payload = encode(body)
    return (b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)


def assert_still_serving(server) -> None:
    """Health and a real question both answer normally, and the process is alive."""
    assert httpx.get(f"{server.url}/api/health", timeout=30).json()["status"] == "ready"
    r = post(server, encode({"question": "Que dit Blinken du Sahel ?"}))
    assert r.status_code == 200 and outcome(r.json()) == "answer 3"


def test_clients_that_hang_up(server):
    whole = request_bytes({"question": "Que dit Blinken du Sahel ?"})
    for _ in range(5):
        hang_up_after(server, whole[:30])  # inside the request line
        hang_up_after(server, whole[:len(whole) // 2])  # inside the headers
        hang_up_after(server, whole[:-10])  # inside the body
        hang_up_after(server, whole)  # the whole request, never reading the answer
    for _ in range(5):
        with connect(server) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(whole)  # closed with a reset, not a polite close
    assert_still_serving(server)


def test_endless_headers_are_refused(server):
    """A client sending header lines without end is cut off, not buffered: 8 MB of headers
    leave the server's memory where it was, and it goes on serving."""
    before = soak.rss_kib(server.pid)
    line = b"X-Pad: " + b"a" * 8_000 + b"\r\n"
    sent = 0
    with connect(server) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            while sent < 8_000_000:
                s.sendall(line)
                sent += len(line)
            s.sendall(b"\r\n")
            reply = s.recv(65536)
        except OSError:  # reset while sending: refused
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 2"), reply[:200]
    assert soak.rss_kib(server.pid) - before < 4_096
    assert_still_serving(server)


@pytest.mark.parametrize("size, status", [(15_000, 200), (17_000, 431), (60_000, 431)])
def test_headers_over_16_kib_are_refused_when_they_come_at_once(server, size, status):
    """h11 bounds headers only while they are still arriving; a whole head in one read is
    measured too."""
    with connect(server) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                  + b"a" * size + b"\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:100]
    if status != 200:
        assert b'"error":"the request headers are over 16 KiB"' in reply
    assert_still_serving(server)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_no_page_loads_from_other_hosts(server, path):
    """FastAPI's API pages fetch their scripts and fonts from other hosts; the app has none."""
    r = httpx.get(f"{server.url}{path}", timeout=30)
    assert r.status_code == 404
    assert "https://" not in r.text


def test_stalled_requests_are_cut_off(project):
    """Connections that send part of a request and stall (slowloris) are closed once the
    request deadline passes, while a client that asks in time is answered and the server
    goes on serving; so is one that stalls in its second request after the first was answered."""
    whole = request_bytes({"question": "Que dit Blinken du Sahel ?"})
    head = whole.split(b"\r\n\r\n")[0]
    with soak.own_server(project, options=["--request-timeout", "3"]) as server:
        stalled = [connect(server) for _ in range(3)]
        stalled[0].sendall(b"GET /api/heal")  # inside the request line
        stalled[1].sendall(head[:-20])  # inside the headers
        stalled[2].sendall(whole[:-10])  # inside the body
        with connect(server) as s:  # a whole answer, then part of a second request
            s.sendall(whole)
            status, payload = read_response(s)
            assert status == 200 and outcome(json.loads(payload)) == "answer 3"
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 1")
            stalled.append(s)
            started = time.monotonic()
            for conn in stalled:
                conn.settimeout(30)
                assert conn.recv(65536) == b"", "the server should close a stalled request"
            waited = time.monotonic() - started
        assert 1.5 < waited < 25
        assert_still_serving(server)
        for conn in stalled[:3]:
            conn.close()


def test_bad_request_timeouts_are_refused(project):
    for value in ("0", "-1", "nan", "inf", "soon"):
        done = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--request-timeout",
                               value], cwd=project, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "positive number of seconds" in done.stderr
        assert "Traceback" not in done.stderr


def test_slow_client(server):
    """A request dribbled over ~2 s is answered, and others are served meanwhile."""
    data = request_bytes({"question": "Que dit Blinken du Sahel ?"})
    head, body = data.split(b"\r\n\r\n", 1)
    pause = 2.0 / len(head)
    reply = []

    def dribble():
        with connect(server) as s:
            for i in range(len(head)):
                s.sendall(head[i:i + 1])
                time.sleep(pause)
            s.sendall(b"\r\n\r\n" + body)
            reply.append(read_response(s))

    slow = threading.Thread(target=dribble)
    slow.start()
    while slow.is_alive():
        assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200
        time.sleep(0.2)
    slow.join()
    status, payload = reply[0]
    assert status == 200 and outcome(json.loads(payload)) == "answer 3"
    assert_still_serving(server)


def read_response(s: socket.socket) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                  if k.lower() == "content-length")
    while len(body) < length:
        body += s.recv(65536)
    return int(lines[0].split()[1]), body


def test_short_soak(server):
    """500 questions over 20 connections after 200 to warm up: no errors, and memory settles."""
    deadline = time.monotonic() + 600
    bodies = soak.gold_bodies()
    warm = soak.run_load(server.url, requests=200, concurrency=20, deadline=deadline,
                         bodies=bodies)
    assert warm.errors == 0, warm.failures
    before = soak.rss_kib(server.pid)
    logged = soak.tracebacks(server.log)
    load = soak.run_load(server.url, requests=500, concurrency=20, deadline=deadline,
                         bodies=bodies)
    after = soak.rss_kib(server.pid)
    assert load.sent == 500 and load.errors == 0, load.failures
    assert soak.growth(before, after) < 10, (before, after)
    assert soak.tracebacks(server.log) == logged
    assert_still_serving(server)


@pytest.mark.slow
def test_full_soak():
    """`bench/soak.py` at its defaults (10,000 questions over 50 connections), given time."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--json",
                          "--max-seconds", "3000"], capture_output=True, text=True, timeout=3600)
    assert out.stdout, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert report["completed"] and report["ask"]["errors"] == 0
    assert report["health"]["errors"] == 0
    assert report["tracebacks_logged"] == 0
    assert report["rss_growth_second_half_pct"] < 2  # settled: no leak
    assert report["rss_growth_pct"] < 10  # see docs/reliability.md on per-thread memory
