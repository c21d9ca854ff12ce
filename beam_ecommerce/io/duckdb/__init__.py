"""The local warehouse on DuckDB: every statement the platform runs against the file.

``warehouse``: the Beam-free resource (the file, its lock protocol, the load, the books and
the queries reports, replay, the demo and the dashboard ask); ``sinks``: the Beam sinks of
the batch and the stream; ``live_metrics``: the live panes' upsert.
"""
