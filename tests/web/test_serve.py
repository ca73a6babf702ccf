"""`suyuan serve` as a real process: it serves the site over HTTP and refuses clearly when
there is no ledger or the port is taken."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.web.conftest import Dalian


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
              ) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()  # type: ignore[no-any-return]
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout} s")


@pytest.mark.slow
def test_serve_answers_over_http(dalian: Dalian, tmp_path: Path) -> None:
    port = _free_port()
    exe = Path(sys.executable).with_name("suyuan")
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(exe), "--db", dalian.url, "serve", "--port", str(port),
             "--public-url", "https://id.example.cn"],
            cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    try:
        body = _wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
        assert b'"ok"' in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?lang=en", timeout=5) as page:
            assert page.headers["Content-Security-Policy"]
            assert b"Suyuan" in page.read()
        # A second server on the same port is refused in one line.
        second = run_cli("--db", dalian.url, "serve", "--port", str(port), cwd=tmp_path)
        assert second.returncode == 1
        assert second.stderr.decode().startswith("suyuan: error: cannot listen on")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "Suyuan serving https://id.example.cn/" in log.read_text()


def test_serve_without_a_ledger_says_so(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", str(_free_port()), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "suyuan: error: no ledger here: run `suyuan init --origin ORIGIN` "
        "(or give --db / SUYUAN_DATABASE_URL)")
    assert not (tmp_path / "data").exists()
