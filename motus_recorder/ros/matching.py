"""Which of a node's topics are not yet connected: matched endpoints, not graph discovery.

A node's ``count_publishers(topic)`` counts the endpoints it has *discovered* on the graph; a
message reaches a subscription only once the DDS writer and reader have *matched* (QoS checked,
locators exchanged), which on a loaded machine can come a second or more later. A one-shot
message (a lockstep simulator's first joint state after a reset, the first command of a ping-pong)
published in between is lost. These helpers read the matched counts of the node's own endpoints
(``Subscription.get_publisher_count``, ``Publisher.get_subscription_count``, rcl's
``rcl_subscription_get_publisher_count`` / ``rcl_publisher_get_subscription_count``) so a node
can say precisely which topic is silent: the ``~/ready`` services of ``teleop_node``,
``expert_node`` and ``recorder_node``, and the recorder's check at ``~/start``.

Threads: call from the node's executor thread (rclpy entity handles are not thread-safe to
destroy concurrently; reading counts is safe while the node lives).
"""

from __future__ import annotations

from collections.abc import Iterable


def silent_subscriptions(subscriptions: Iterable) -> list[str]:
    """Topics of ``subscriptions`` (rclpy ``Subscription``) with no matched publisher.

    Returns the fully qualified topic names, in the given order, each once.
    """
    return list(dict.fromkeys(s.topic_name for s in subscriptions if s.get_publisher_count() < 1))


def unheard_publishers(publishers: Iterable) -> list[str]:
    """Topics of ``publishers`` (rclpy ``Publisher``) with no matched subscription.

    Returns the fully qualified topic names, in the given order, each once.
    """
    return list(dict.fromkeys(p.topic_name for p in publishers if p.get_subscription_count() < 1))


def readiness(subscriptions: Iterable, publishers: Iterable = ()) -> tuple[bool, str]:
    """``(ready, message)`` for a std_srvs/Trigger ``~/ready`` answer.

    Ready when every subscription has a matched publisher and every publisher a matched
    subscription; otherwise the message names each silent topic, e.g.
    ``"no publisher matched on ['/left_arm/joint_states']; no subscriber matched on [...]"``.
    """
    silent, unheard = silent_subscriptions(subscriptions), unheard_publishers(publishers)
    parts = []
    if silent:
        parts.append(f"no publisher matched on {silent}")
    if unheard:
        parts.append(f"no subscriber matched on {unheard}")
    return (not parts, "; ".join(parts) if parts else "every topic matched")
