"""The ledger's tables (SQLAlchemy 2): :class:`Reservation` and :class:`ReservationGroup`.
Alembic migrations in ``alembic/`` create them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# states: pending (reserved, not started), active (running, interval open),
# released / expired (closed); only pending and active count against a quota
PENDING, ACTIVE, RELEASED, EXPIRED = "pending", "active", "released", "expired"
OPEN_STATES = (PENDING, ACTIVE)


class Base(DeclarativeBase):
    """The ledger's metadata."""


class Reservation(Base):
    """One row of ``af_reservations``: a claim on a quota and, once confirmed, the usage
    interval of what runs under it: who (and their groups at the time, in
    ``af_reservation_groups``), what kind, which resources, from ``started`` to
    ``ended``. Times are UTC seconds since the epoch."""

    __tablename__ = "af_reservations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # the service (token owner) that made it; only it may confirm, renew or release it
    client: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255), default="")
    cores: Mapped[float] = mapped_column(Float(53), default=0.0)
    memory: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_type: Mapped[str] = mapped_column(String(64), default="")
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[float] = mapped_column(Float(53))
    # a pending or active reservation not confirmed or renewed by then stops counting
    expires: Mapped[float] = mapped_column(Float(53))
    started: Mapped[float | None] = mapped_column(Float(53), nullable=True)
    last_seen: Mapped[float | None] = mapped_column(Float(53), nullable=True)
    ended: Mapped[float | None] = mapped_column(Float(53), nullable=True)
    end_reason: Mapped[str] = mapped_column(String(64), default="")

    groups: Mapped[list[ReservationGroup]] = relationship(
        back_populates="reservation", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_af_reservations_user_state", "user", "state"),
        Index("ix_af_reservations_state_expires", "state", "expires"),
        Index("ix_af_reservations_started", "started"),
        Index("ix_af_reservations_ended", "ended"),
    )

    @property
    def group_names(self) -> list[str]:
        """The user's groups when it was reserved, sorted."""
        return sorted(g.group for g in self.groups)

    def as_json(self) -> dict:
        """The reservation as the REST API answers it."""
        return {
            "id": self.id,
            "user": self.user,
            "groups": self.group_names,
            "kind": self.kind,
            "server": self.server,
            "resources": {
                "cores": self.cores,
                "memory": self.memory,
                "gpus": {self.gpu_type: self.gpus} if self.gpus else {},
            },
            "state": self.state,
            "created": self.created,
            "expires": self.expires,
            "started": self.started,
            "ended": self.ended,
            "end_reason": self.end_reason,
        }


class ReservationGroup(Base):
    """The user's groups when the reservation was made (usage by group reads these)."""

    __tablename__ = "af_reservation_groups"

    reservation_id: Mapped[str] = mapped_column(
        ForeignKey("af_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    reservation: Mapped[Reservation] = relationship(back_populates="groups")

    __table_args__ = (Index("ix_af_reservation_groups_group", "group"),)
