"""``eyewear bench``: the service measured against the bare drivers, side by side, in one run.

One module per group of measurements (``ingestion``, ``memory``, ``reads``, ``auth``, ``http``),
the shared sampling in ``measure``, the scratch databases in ``session``, the output in
``report``, the order of it all in ``runner``. What each result means: docs/performance.md.
"""
