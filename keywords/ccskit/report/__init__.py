"""Performance and reliability report: merge per-process metrics files, compute KPIs, draw the page.

Modules, one concept each (importing this package pulls in nothing heavy; ``charts`` loads
matplotlib only when a report is drawn):

- ``store``: read/write metrics files, merge pabot processes, pick the latest run, keep history.
- ``stats``: summaries of latency samples; a percentile only where the sample count supports it
  (``stats.PERCENTILE_RULE``: p99 needs 100 samples, p99.9 1,000).
- ``kpis``: the seed plan's KPIs: the worst figure any test measured (the highest, for
  capacities), naming the test; an average target against averages only; else "not measured"
  with the reason.
- ``coverage``: what the run left out of its suite sources, and why (tag, include, selection).
- ``runinfo``: the run's metadata: kit commit, machine, tag selection, server URL and version.
- ``compare``: change against the previous run and regression flags.
- ``sampler``: background RSS/CPU sampling of the server process (series for the timeline).
- ``charts`` and ``page``: inline SVG charts and the self-contained HTML page.

How to name what keyword libraries record (``ccskit.metrics.recorder``) so the report finds it:

- Latency samples (``add_samples``, unit ``ms``/``s``/``us``): the category comes from the name —
  ``e2e``/``end_to_end``/``round_trip`` → end-to-end; ``db``…/``query``/``insert``/``commit`` →
  database operation; ``ws``…/``deliver``/``fanout``/``broadcast`` → WebSocket delivery.
  Recommended: ``db_insert_ms``, ``ws_delivery_ms``, ``e2e_ms``.
- Per-test figures (``record``): ``messages_per_s`` (unit ``msg/s``), ``concurrent_connections``
  (``connections``), ``db_tx_per_s`` (``tx/s``), ``connection_uptime_pct`` (``%``),
  ``delivery_success_pct`` (``%``), ``recovery_s`` (``s``); latency figures in ``ms`` with the same
  category words (``ws_delivery_p99_ms``).
- Series over time (``add_point``): ``throughput_msgs_per_s`` (``msg/s``) and any other ``…/s``
  series go to the throughput chart; ``…_ms`` series to the latency timeline; ``server_rss_mib``
  and ``server_cpu_pct`` come from ``sampler``.
- Faults (``fault_event``): ``injected``, ``recovered`` (service back) and ``first_ack`` (first
  acknowledged send after it) with the same ``kind``; recovery time is measured from them.
"""
