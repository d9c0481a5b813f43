"""llmpulse: monitoring and maintenance for LLM pipelines."""

__version__ = "0.1.0"
