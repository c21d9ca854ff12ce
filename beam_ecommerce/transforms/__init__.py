"""The transform core: the same PTransforms run in the batch and the streaming pipeline."""

from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RecordError
from beam_ecommerce.transforms.dedupe import DeduplicateEvents
from beam_ecommerce.transforms.enrich import EnrichEvents
from beam_ecommerce.transforms.parse import ParseEvents
from beam_ecommerce.transforms.process import BatchRecords, ProcessedEvents, ProcessEvents
from beam_ecommerce.transforms.validate import ValidateEvents

__all__ = [
    "BatchRecords",
    "DEAD_LETTER_TAG",
    "DeduplicateEvents",
    "EnrichEvents",
    "ParseEvents",
    "ProcessEvents",
    "ProcessedEvents",
    "RecordError",
    "RunContext",
    "ValidateEvents",
    "dead_letter_row",
]
