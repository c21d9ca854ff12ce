"""The cloud warehouse on BigQuery, through Beam's own connectors.

``sinks``: the batch and stream sinks of ``raw_events`` and ``dead_letter``; ``load``: a run's
Avro file loads into a staging table and the one ``MERGE`` on the key; ``live_metrics``: the
live panes, appended.
"""
