"""Pub/Sub edges: messages in as the core's raw records, dead letters out to an optional topic."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub

from beam_ecommerce.records import RawRecord, Row
from beam_ecommerce.records.dead_letter import original_payload


def message_to_record(message: PubsubMessage, origin: str) -> RawRecord:
    """The raw record of one message; its source is ``<subscription or topic>#<message id>``."""
    attributes = tuple(sorted((message.attributes or {}).items()))
    return RawRecord(message.data or b"", f"{origin}#{message.message_id}", attributes=attributes)


def message_id_of(source: str) -> str:
    """The message id in a record's ``source`` made by ``message_to_record``."""
    return source.rpartition("#")[2]


class ReadEventMessages(beam.PTransform):
    """A Pub/Sub subscription (or topic) -> a PCollection of ``RawRecord``, one per message.

    With ``deliveries_key`` (the local runner only), messages are read with
    ``ReadAfterCommit`` and acknowledged by the sink once committed, through the run's
    ``Deliveries`` of that key; without, with Beam's ``ReadFromPubSub``, which on Dataflow
    acknowledges a message once the bundle that read it is durably committed.
    """

    def __init__(
        self, subscription: str | None = None, topic: str | None = None, deliveries_key: str | None = None
    ) -> None:
        super().__init__()
        if bool(subscription) == bool(topic):
            raise ValueError("give exactly one of a subscription or a topic")
        self.subscription = subscription
        self.topic = topic
        self.deliveries_key = deliveries_key

    def expand(self, pbegin):
        origin = self.subscription or self.topic
        if self.deliveries_key:
            from beam_ecommerce.io.pubsub_local import ReadAfterCommit  # Beam's local runner, imported only for it

            read = ReadAfterCommit(self.deliveries_key, subscription=self.subscription, topic=self.topic)
        else:
            read = ReadFromPubSub(subscription=self.subscription, topic=self.topic, with_attributes=True)
        return pbegin | "ReadFromPubSub" >> read | "ToRawRecords" >> beam.Map(message_to_record, origin)


# Pub/Sub caps an attribute value at 1024 bytes.
_ATTRIBUTE_LIMIT = 1024


def dead_letter_message(dead_letter: Row) -> PubsubMessage:
    """A dead letter as a message for alerting and replay: the original bytes, the reason as attributes."""
    attributes = {
        key: str(dead_letter[key])[:_ATTRIBUTE_LIMIT]
        for key in ("dead_letter_id", "stage", "error_type", "errorMessage", "source", "run_id")
    }
    for key in ("event_id", "event_type"):
        if dead_letter.get(key):
            attributes[key] = dead_letter[key]
    return PubsubMessage(original_payload(dead_letter), attributes)


class PublishDeadLetters(beam.PTransform):
    """Dead-letter rows -> a Pub/Sub topic (optional, besides the dead-letter table and files)."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def expand(self, dead_letters):
        return (
            dead_letters
            | "ToMessages" >> beam.Map(dead_letter_message)
            | "WriteToPubSub" >> WriteToPubSub(self.topic, with_attributes=True)
        )
