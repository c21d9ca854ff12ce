"""ReadEventMessages: Pub/Sub messages (with attributes) as the core's raw records."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub

from beam_ecommerce.records import RawRecord


def message_to_record(message: PubsubMessage, origin: str) -> RawRecord:
    """The raw record of one message; its source is ``<subscription or topic>#<message id>``."""
    attributes = tuple(sorted((message.attributes or {}).items()))
    return RawRecord(message.data or b"", f"{origin}#{message.message_id}", attributes=attributes)


class ReadEventMessages(beam.PTransform):
    """A Pub/Sub subscription (or topic) -> a PCollection of ``RawRecord``, one per message."""

    def __init__(self, subscription: str | None = None, topic: str | None = None) -> None:
        super().__init__()
        if bool(subscription) == bool(topic):
            raise ValueError("give exactly one of a subscription or a topic")
        self.subscription = subscription
        self.topic = topic

    def expand(self, pbegin):
        origin = self.subscription or self.topic
        return (
            pbegin
            | "ReadFromPubSub" >> ReadFromPubSub(subscription=self.subscription, topic=self.topic, with_attributes=True)
            | "ToRawRecords" >> beam.Map(message_to_record, origin)
        )
