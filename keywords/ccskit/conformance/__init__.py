"""Traceability from the contract to the tests, and the conformance report of a run.

- ``statements``: the normative statements of ``docs/protocol.md`` (ids such as ``§4.2-c``) and the
  promises of ``docs/guarantees.md`` (``P1`` … ``P18``).
- ``citations``: which test cites which id, read from the suites (static) or from an ``output.xml``
  (with each test's status).
- ``coverage``: statements joined with citations; the static check and the per-statement verdicts.
- ``page``: the one-page HTML report and its JSON twin.
"""
