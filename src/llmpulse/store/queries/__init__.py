"""Read paths of the store, one module per kind of question.

``rollups``: span aggregates and branch counts over a window (from rollups, never raw spans);
``spans``: raw spans and traces; ``records``: metric points and runs. ``window`` plans which
hour and minute rollup rows cover a window.
"""
