"""Outbound topic aliases: the broker names a topic once per connection, then sends only a number.

A 5.0 client that announces a Topic Alias Maximum above 0 in CONNECT lets the broker replace a topic
name by a two-byte alias [MQTT-3.3.2.3.4]: the first PUBLISH on a topic carries the name and the alias
that now stands for it, later ones an empty name and the alias. The mapping lives as long as the
connection [MQTT-3.3.2-7], so a resumed session starts afresh.

:class:`OutboundAliases` keeps the mapping as a least-recently-used table bounded by the smaller of
the client's maximum and the broker's (overflow policy: the least recently used topic gives up its
alias to the new one, which is then sent in full).
"""

from __future__ import annotations


class OutboundAliases:
    """Topic → alias for one connection, least recently used first (see the module docstring).

    Args:
        maximum: Most aliases in use at once; at most the client's Topic Alias Maximum [MQTT-3.3.2-9].
    """

    __slots__ = ("_aliases", "_free", "_next", "maximum")

    def __init__(self, maximum: int) -> None:
        if not 0 < maximum <= 65535:
            raise ValueError(f"topic alias maximum must be within 1..65535, not {maximum}")
        self.maximum = maximum
        self._aliases: dict[str, int] = {}  # insertion order is recency order
        self._free: list[int] = []
        self._next = 1

    def __len__(self) -> int:
        return len(self._aliases)

    def assign(self, topic: str) -> tuple[int, bool]:
        """The alias for ``topic`` and whether the client already knows it.

        When it does not (``False``), the PUBLISH must carry the topic name beside the alias; if that
        PUBLISH is then not sent after all, call :meth:`forget` so the table matches what the client saw.
        """
        aliases = self._aliases
        alias = aliases.pop(topic, None)
        if alias is not None:
            aliases[topic] = alias  # now the most recently used
            return alias, True
        if self._free:
            alias = self._free.pop()
        elif self._next <= self.maximum:
            alias = self._next
            self._next += 1
        else:
            alias = aliases.pop(next(iter(aliases)))  # the least recently used topic gives its alias up
        aliases[topic] = alias
        return alias, False

    def forget(self, topic: str) -> None:
        """Drop the alias of ``topic`` (its PUBLISH was not sent); the alias becomes free again."""
        alias = self._aliases.pop(topic, None)
        if alias is not None:
            self._free.append(alias)
