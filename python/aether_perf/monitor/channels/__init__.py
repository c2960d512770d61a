"""Notification channels for alerts: e-mail, Slack, generic webhook, Alertmanager, log.

Each channel has ``send(event)`` (raises on failure) and ``probe()``; the :class:`Dispatcher` runs
one background worker per channel with retries and backoff, so delivery never blocks monitoring.
"""

from aether_perf.monitor.channels.base import Channel, ChannelStats, Dispatcher
from aether_perf.monitor.channels.http import AlertmanagerChannel, SlackChannel, WebhookChannel
from aether_perf.monitor.channels.log import LogChannel
from aether_perf.monitor.channels.smtp import SmtpChannel

__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "ChannelStats",
    "Dispatcher",
    "LogChannel",
    "SlackChannel",
    "SmtpChannel",
    "WebhookChannel",
]
