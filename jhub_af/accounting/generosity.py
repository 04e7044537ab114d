"""The one rule that resolves a limit set by several of a user's groups."""

from __future__ import annotations

from collections.abc import Iterable


def most_generous(values: Iterable, *, no_limit=None):
    """The most generous of the limits that a user's groups set for one dimension.

    ``no_limit`` is the value that means "no limit" in that dimension (``None`` for
    quotas, ``0`` for idle timeouts and lifetimes): when any group sets it, it wins;
    otherwise the largest number does. Takes a non-empty iterable; raises
    ``ValueError`` when it is empty (the caller falls back to its default then).

    Called by :func:`jhub_af.accounting.policy.resolve` and by the Dask Gateway's
    options and housekeeping (cluster bounds, idle timeout, lifetime by group).
    """
    values = list(values)
    if not values:
        raise ValueError("most_generous() needs at least one value")
    if any(v is no_limit or (no_limit is not None and v == no_limit) for v in values):
        return no_limit
    return max(values)
