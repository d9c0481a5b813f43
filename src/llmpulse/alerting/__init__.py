"""Alerting: rules, the engine that evaluates them, and the channels that deliver notifications.

``llmpulse.alerting.channels`` holds the notification side (email, Slack, Discord, signed
webhooks, Alertmanager forwarding, custom handlers). Importing this package loads nothing else.
"""
