"""Local stand-ins for a Dataflow submission: a played Dataflow REST API and a GCS emulator.

``PlayedDataflow`` answers the two calls Beam's ``DataflowRunner`` makes to submit and
watch a job: ``POST .../jobs`` (recorded, answered with a job id) and ``GET .../jobs/ID``
(answered with the state the test chose, ``JOB_STATE_DONE`` or ``JOB_STATE_RUNNING``).
Nothing runs the job. ``GcsEmulator`` is the ``gcp-storage-emulator`` package, the real
GCS JSON API in memory, which Beam's ``gs://`` file system talks to through
``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

JOB_ID = "2026-11-29_00_00_00-1234567890"


class PlayedDataflow:
    """A thread serving the Dataflow jobs API on localhost; ``jobs`` holds every job-create body."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.jobs: list[dict[str, Any]] = []
        self.requests: list[str] = []
        played = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                pass

            def _answer(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                played.requests.append(f"POST {self.path}")
                job = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                played.jobs.append(job)
                self._answer({**job, "id": JOB_ID, "currentState": "JOB_STATE_PENDING"})

            def do_GET(self) -> None:
                played.requests.append(f"GET {self.path}")
                self._answer({"id": JOB_ID, "currentState": played.state})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Beam only accepts a custom endpoint that starts with http://localhost.
        self.endpoint = f"http://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PlayedDataflow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GcsEmulator:
    """gcp-storage-emulator in memory, in its own process group (stopped as a group)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> GcsEmulator:
        executable = Path(sys.executable).with_name("gcp-storage-emulator")
        self._process = subprocess.Popen(
            [str(executable), "start", "--host=127.0.0.1", f"--port={self.port}", "--in-memory"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self._process.poll() is not None:
                    raise RuntimeError("gcp-storage-emulator exited at start") from None
                time.sleep(0.1)
        raise RuntimeError("gcp-storage-emulator did not open its port")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=30)

    def _call(self, method: str, path: str, data: bytes | None = None, content_type: str = "application/json"):
        request = urllib.request.Request(f"{self.host}{path}", data=data, method=method)
        request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def create_bucket(self, name: str) -> None:
        self._call("POST", "/storage/v1/b?project=test", json.dumps({"name": name}).encode())

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        self._call("POST", f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}", data, "text/plain")

    def names(self, bucket: str) -> list[str]:
        listing = json.loads(self._call("GET", f"/storage/v1/b/{bucket}/o"))
        return [item["name"] for item in listing.get("items", [])]

    def read(self, bucket: str, name: str) -> bytes:
        return self._call("GET", f"/storage/v1/b/{bucket}/o/{urllib.request.quote(name, safe='')}?alt=media")
