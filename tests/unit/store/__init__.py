"""Tests of llmpulse.store."""
