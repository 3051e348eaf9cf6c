"""Request bodies are bounded (issue 23, "request bodies"), tried as an attacker would against the running app
over real HTTP: one 100 MB POST cost the server +225 MB before."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.memory import ResidentMemory
from tests.test_app_http import server  # noqa: F401  (the running app, a fixture)

pytestmark = pytest.mark.slow


def claim(url: str, path: str, length: int, content_type: str = "application/json") -> str:
    """The status line and body of a POST that says it carries `length` bytes and sends two: a server that
    waited for the body would never answer."""
    where = urlparse(url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: {content_type}\r\n"
                           f"Content-Length: {length}\r\n\r\n{{}}".encode())
        answer = b""
        while len(answer) < 65536 and (chunk := connection.recv(4096)):  # the server closes after its answer
            answer += chunk
        return answer.decode(errors="replace")


def test_a_huge_body_is_refused_before_it_is_read(server):  # noqa: F811
    url, _assistant = server
    answer = claim(url, "/gradio_api/queue/join", 100 * 1024 * 1024)
    assert answer.startswith("HTTP/1.1 413") and "too large" in answer, answer

    def hundred_megabytes():  # no Content-Length: chunked, counted as it arrives
        block = b"[" + b"1," * (512 * 1024)
        for _ in range(100):
            yield block

    started = time.monotonic()
    with ResidentMemory() as memory:
        try:
            answer = httpx.post(f"{url}gradio_api/queue/join", content=hundred_megabytes(),
                                headers={"Content-Type": "application/json"}, timeout=30)
            status = answer.status_code
        except httpx.HTTPError:  # the server may close the connection while the client still sends
            status = 413
    assert status == 413
    assert time.monotonic() - started < 5
    assert memory.peak_mb < 50, memory.peak_mb


def test_uploads_keep_their_own_larger_cap(server, tmp_path):  # noqa: F811
    url, assistant = server
    small = httpx.post(f"{url}gradio_api/upload", files={"files": ("a.wav", b"RIFF" + b"\0" * (3 * 1024 * 1024))},
                       timeout=30)
    assert small.status_code == 200, small.text  # 3 MB: over the JSON cap, under the upload cap
    answer = claim(url, "/gradio_api/upload", 200 * 1024 * 1024, "multipart/form-data; boundary=x")
    assert answer.startswith("HTTP/1.1 413"), answer  # never read (Gradio itself refuses past max_upload_mb)
