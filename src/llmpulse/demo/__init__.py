"""``llmpulse demo``: a simulated support-assistant pipeline with an incident, end to end.

``runner.run_demo`` does the work (simulator, instrumented pipeline, virtual clock, incident);
``report`` and ``findings`` render what the store and the checks say about it.
"""
