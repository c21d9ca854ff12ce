"""Pub/Sub on Beam's local runner, acknowledged only once the warehouse has committed each message.

Beam's local (DirectRunner) Pub/Sub reader acknowledges a pull at once, before anything
downstream has run: a stop under load, or a bundle the sink gives up on, loses those
messages, and no count downstream of the reader can see it. ``ReadAfterCommit``
replaces it on the local runner. Its evaluator pulls but does not acknowledge: it hands
each delivery's ack id to the run's ``Deliveries``, a ledger in this process (the local
runner runs every step in the process that started it). The sink calls
``Deliveries.committed`` once a bundle's rows, dead letters and absorbed duplicates are
committed, and only then are those messages acknowledged. Until then the ledger keeps
their leases alive (a load may wait minutes for a locked warehouse).

On stop the run drains, as Dataflow does: the reader stops pulling and ends, its
watermark at the end of time, so every open window fires its final pane, every timer
fires, what is in flight commits, and the runner finishes the pipeline on its own.
Whatever is still in flight when the run ends is released for redelivery
(``Deliveries.release``). A message committed but not acknowledged (a crash between the
two) comes back and is absorbed by the load's ``event_id`` anti join.

The ledger also counts every delivery it pulled: the source's own count, from which the
run's report computes ``lost``, independently of the sink's books.

On Dataflow, Beam's native Pub/Sub source acknowledges a message only after the bundle
that read it is durably committed, so the cloud path keeps ``ReadFromPubSub``. Splittable
DoFns fail on the local streaming runner, hence a native evaluator here.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence

from apache_beam.io.gcp.pubsub import PubsubMessage, _PubSubSource
from apache_beam.pvalue import PBegin, PCollection
from apache_beam.runners.direct.direct_runner import _DirectReadFromPubSub
from apache_beam.runners.direct.transform_evaluator import TransformEvaluatorRegistry, _PubSubReadEvaluator
from apache_beam.runners.direct.util import TransformResult
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

_LOGGER = logging.getLogger(__name__)

# Messages per pull; Beam's local reader takes 10, and each pull is one bundle through every step.
PULL_MAX_MESSAGES = 100
# How long a pull waits for messages (Beam's reader: 30 s). An idle reader's pull holds the
# local runner's one worker, so this bounds how late a stop, a drain or an early firing is
# seen; the emulator answers an empty pull shortly before this deadline.
PULL_WAIT_SECONDS = 2.0
# Leases of messages in flight are renewed this often, to this length (the shortest ack deadline is 10 s).
_LEASE_RENEWAL_SECONDS = 3.0
_LEASE_SECONDS = 60
# Ack ids per acknowledge / modify-deadline request (Pub/Sub caps a request's size).
_ACK_IDS_PER_REQUEST = 1000


def _chunks(ack_ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ack_ids), _ACK_IDS_PER_REQUEST):
        yield list(ack_ids[start : start + _ACK_IDS_PER_REQUEST])


class Deliveries:
    """One run's ledger of Pub/Sub deliveries: pulled, in flight (leased), acknowledged or released.

    ``pulled`` counts deliveries (a message redelivered while in flight counts twice, and
    its second copy ends as an absorbed duplicate). ``failure`` is set by a sink that
    could not commit: the run stops, and acknowledges nothing it did not commit.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._in_flight: dict[str, deque[str]] = {}  # message id -> ack ids of its deliveries, oldest first
        self._subscription: str | None = None
        self._client = None
        self._leases: threading.Thread | None = None
        self._closed = threading.Event()
        self.pulled = 0
        self.acknowledged = 0
        self.released = 0
        self.pulling = True
        self.failure: str | None = None

    def _subscriber(self):
        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.SubscriberClient()
        return self._client

    def record_pull(self, subscription: str, received: Sequence) -> None:
        """Takes charge of the deliveries of one pull: counted, leased until committed or released."""
        with self._lock:
            self._subscription = subscription
            self.pulled += len(received)
            for delivery in received:
                self._in_flight.setdefault(delivery.message.message_id, deque()).append(delivery.ack_id)
            if self._leases is None and received:
                self._leases = threading.Thread(target=self._renew_leases, name="pubsub-leases", daemon=True)
                self._leases.start()

    def committed(self, message_ids: Iterable[str]) -> None:
        """Acknowledges one delivery of each message id: its row, dead letter or duplicate is committed."""
        ack_ids = []
        with self._lock:
            for message_id in message_ids:
                pending = self._in_flight.get(message_id)
                if pending:
                    ack_ids.append(pending.popleft())
                    if not pending:
                        del self._in_flight[message_id]
            self._lock.notify_all()
        try:
            for chunk in _chunks(ack_ids):
                self._subscriber().acknowledge(subscription=self._subscription, ack_ids=chunk)
                with self._lock:
                    self.acknowledged += len(chunk)
        except Exception as error:  # committed already: a redelivery is absorbed as a duplicate
            _LOGGER.warning("could not acknowledge %d committed messages: %s", len(ack_ids), error)

    def fail(self, reason: str) -> None:
        """A sink could not commit: stop pulling; what is in flight stays unacknowledged."""
        with self._lock:
            self.failure = self.failure or reason
            self.pulling = False
            self._lock.notify_all()

    def stop_pulling(self) -> None:
        """Starts the drain: the reader pulls no more and ends, and its watermark goes to the end of time."""
        with self._lock:
            self.pulling = False

    def release(self) -> None:
        """Hands every delivery still in flight back to Pub/Sub for redelivery, and stops renewing leases."""
        self._closed.set()
        with self._lock:
            ack_ids = [ack_id for pending in self._in_flight.values() for ack_id in pending]
            self._in_flight.clear()
            self.released += len(ack_ids)
        try:
            for chunk in _chunks(ack_ids):
                self._subscriber().modify_ack_deadline(
                    subscription=self._subscription, ack_ids=chunk, ack_deadline_seconds=0
                )
        except Exception as error:  # unacknowledged all the same: they come back when their lease ends
            _LOGGER.warning(
                "could not release %d messages; redelivered within %d s: %s", len(ack_ids), _LEASE_SECONDS, error
            )

    def _renew_leases(self) -> None:
        while not self._closed.wait(_LEASE_RENEWAL_SECONDS):
            with self._lock:
                ack_ids = [ack_id for pending in self._in_flight.values() for ack_id in pending]
            try:
                for chunk in _chunks(ack_ids):
                    self._subscriber().modify_ack_deadline(
                        subscription=self._subscription, ack_ids=chunk, ack_deadline_seconds=_LEASE_SECONDS
                    )
            except Exception as error:  # a lapsed lease means a redelivery, absorbed as a duplicate
                _LOGGER.warning("could not renew the leases of %d messages in flight: %s", len(ack_ids), error)


_LEDGERS: dict[str, Deliveries] = {}
_LEDGERS_LOCK = threading.Lock()


def deliveries(key: str) -> Deliveries:
    """The ledger of the run ``key`` in this process, created on first use."""
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get(key)
        if ledger is None:
            ledger = _LEDGERS[key] = Deliveries()
        return ledger


def registered_deliveries(key: str) -> Deliveries | None:
    """The ledger of the run ``key`` if its messages are read with ``ReadAfterCommit``, else ``None``."""
    with _LEDGERS_LOCK:
        return _LEDGERS.get(key)


def forget_deliveries(key: str) -> None:
    with _LEDGERS_LOCK:
        _LEDGERS.pop(key, None)


class ReadAfterCommit(_DirectReadFromPubSub):
    """The local runner's Pub/Sub read whose messages are acknowledged by the sink, after commit.

    Yields ``PubsubMessage`` with attributes, timestamped with their publish time, as
    ``ReadFromPubSub(with_attributes=True)`` does; ``deliveries_key`` names the run's
    ``Deliveries``. A primitive of Beam's BundleBasedDirectRunner only. Given a topic, it
    reads through a temporary subscription, as Beam's reader does: what it releases at
    stop goes with that subscription (as does what is published while no stream runs);
    read a subscription to keep them.
    """

    def __init__(self, deliveries_key: str, subscription: str | None = None, topic: str | None = None) -> None:
        super().__init__(_PubSubSource(topic=topic, subscription=subscription, with_attributes=True))
        self.deliveries_key = deliveries_key

    def expand(self, pbegin: PBegin) -> PCollection:
        return PCollection(pbegin.pipeline, is_bounded=False)  # a primitive: _ReadAfterCommitEvaluator runs it


class _ReadAfterCommitEvaluator(_PubSubReadEvaluator):
    """Beam's local Pub/Sub evaluator, except that it records each pull in the run's ledger instead of acking it,
    and that it drains once the ledger stops pulling."""

    def _ledger(self) -> Deliveries:
        return deliveries(self._applied_ptransform.transform.deliveries_key)

    def finish_bundle(self) -> TransformResult:
        if self._ledger().pulling:
            return super().finish_bundle()
        # Drained: no output, no bundle to read again, and no hold (Beam's reader holds at
        # wall-clock time), so the watermark goes to the end of time downstream: every
        # window fires its final pane, every timer fires, and the runner finishes.
        return TransformResult(self, [], [], None, {None: MAX_TIMESTAMP})

    def _read_from_pubsub(self, timestamp_attribute: str | None) -> list[tuple[Timestamp, PubsubMessage]]:
        client = self._get_subscriber_client(self._applied_ptransform)
        response = client.pull(subscription=self._sub_name, max_messages=PULL_MAX_MESSAGES, timeout=PULL_WAIT_SECONDS)
        self._ledger().record_pull(self._sub_name, response.received_messages)
        return [
            (Timestamp.from_utc_datetime(received.message.publish_time), PubsubMessage._from_message(received.message))
            for received in response.received_messages
        ]


# Beam's registry maps a transform class to its evaluator; this adds ours for our class only. The
# names are the DirectRunner's private ones (apache-beam is pinned in setup.py): the emulator tests
# of tests/reliability/test_stream_delivery.py fail if an upgrade moves them.
TransformEvaluatorRegistry._test_evaluators_overrides[ReadAfterCommit] = _ReadAfterCommitEvaluator
