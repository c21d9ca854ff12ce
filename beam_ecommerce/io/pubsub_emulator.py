"""Google's Pub/Sub emulator, the local stand-in for Pub/Sub: started on a free loopback port.

``gcloud`` starts a Java server and leaves it running when it is killed, so the
emulator gets its own process group and the whole group is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

EMULATOR_PACKAGE = "google-cloud-cli-pubsub-emulator"


def emulator_missing_reason() -> str | None:
    """Why the emulator cannot run here, or ``None`` when it can."""
    installed = subprocess.run(["dpkg", "-s", EMULATOR_PACKAGE], capture_output=True).returncode == 0
    if not installed:
        return (
            f"THE PUB/SUB EMULATOR IS NOT INSTALLED ({EMULATOR_PACKAGE}): streaming integration tests skipped. "
            "Install it with `gcloud components install pubsub-emulator` or the Debian package."
        )
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_topic_and_subscription(project: str, topic: str, subscription: str) -> tuple[str, str]:
    """Creates ``topic`` and ``subscription`` on the emulator; returns their full paths."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(project, topic)
    subscription_path = subscriber.subscription_path(project, subscription)
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription_path, topic=topic_path)
    return topic_path, subscription_path


@contextmanager
def pubsub_emulator(project: str, timeout: float = 60.0) -> Iterator[str]:
    """Runs the emulator; yields its ``host:port`` (also set as ``PUBSUB_EMULATOR_HOST``)."""
    host = f"127.0.0.1:{_free_port()}"
    log = tempfile.NamedTemporaryFile(prefix="pubsub-emulator-", suffix=".log", delete=False)
    process = subprocess.Popen(
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}", f"--project={project}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # gcloud leaves the Java server running: stop the whole group
    )
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    started = False
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(host.split(":"), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Pub/Sub emulator did not start; see {log.name}") from None
                time.sleep(0.3)
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        started = True
        yield host
    finally:
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        if started:  # the log of an emulator that would not start is what its error points to
            os.remove(log.name)
