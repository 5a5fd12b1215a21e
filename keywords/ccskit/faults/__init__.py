"""Fault injection for the CCS kit: private PostgreSQL/Redis, TCP proxy, backend/process faults.

Each module holds one concept; ``ccskit.keywords.faults`` holds the Robot keywords over them.
Every fault and its recovery is written to :class:`~ccskit.faults.timeline.FaultTimeline`, which
forwards it to the metrics recorder so the report can draw a fault timeline.
"""
