"""af-accounting: the one place where quota decisions are made and usage is recorded.

- :mod:`.policy`: the quota model (``QuotaPolicy``), the resolution rule, decisions.
- :mod:`.ledger`: reservations and usage intervals (SQLite or PostgreSQL, Alembic).
- :mod:`.service`: the JupyterHub service ``af-accounting`` (REST API, pages, /metrics).
- :mod:`.client`: ``AccountingClient`` for the hub and the Dask Gateway.
- :mod:`.spawn`: ``SpawnReservation``, one server's reservation, held by its spawner.
- :mod:`.hubconfig`: the hub config that runs the service (services, roles, scopes).
"""

from .client import (
    AccountingClient,
    AccountingRefused,
    AccountingUnavailable,
    QuotaDenied,
    Reservation,
)
from .generosity import most_generous
from .hubconfig import accounting_hub_config
from .policy import QuotaPolicy, decide, effective_limits
from .resources import BadRequest, format_memory, memory_bytes
from .scopes import ACCOUNTING_SCOPES, READ_SCOPE, RESERVE_SCOPE
from .spawn import (
    ACCOUNTING_OFF,
    AccountingSpawnerMixin,
    SpawnReservation,
    accounting_configured,
    resources_for_selection,
)
from .spawn import STATE_KEY as RESERVATION_STATE_KEY
from .usage_command import ReportError, usage_report

__all__ = [
    "ACCOUNTING_OFF",
    "ACCOUNTING_SCOPES",
    "READ_SCOPE",
    "RESERVATION_STATE_KEY",
    "RESERVE_SCOPE",
    "AccountingClient",
    "AccountingRefused",
    "AccountingSpawnerMixin",
    "AccountingUnavailable",
    "BadRequest",
    "QuotaDenied",
    "QuotaPolicy",
    "ReportError",
    "Reservation",
    "SpawnReservation",
    "accounting_configured",
    "accounting_hub_config",
    "decide",
    "effective_limits",
    "format_memory",
    "memory_bytes",
    "most_generous",
    "resources_for_selection",
    "usage_report",
]
