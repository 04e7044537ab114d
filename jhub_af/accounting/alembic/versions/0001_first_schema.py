"""The first ledger schema: reservations (usage intervals) and their groups.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "af_reservations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("cores", sa.Float(53), nullable=False),
        sa.Column("memory", sa.BigInteger(), nullable=False),
        sa.Column("gpu_type", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(53), nullable=False),
        sa.Column("expires", sa.Float(53), nullable=False),
        sa.Column("started", sa.Float(53), nullable=True),
        sa.Column("last_seen", sa.Float(53), nullable=True),
        sa.Column("ended", sa.Float(53), nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_af_reservations_user_state", "af_reservations", ["user", "state"])
    op.create_index("ix_af_reservations_state_expires", "af_reservations", ["state", "expires"])
    op.create_index("ix_af_reservations_started", "af_reservations", ["started"])
    op.create_index("ix_af_reservations_ended", "af_reservations", ["ended"])
    op.create_table(
        "af_reservation_groups",
        sa.Column(
            "reservation_id",
            sa.String(32),
            sa.ForeignKey("af_reservations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("group", sa.String(255), primary_key=True),
    )
    op.create_index("ix_af_reservation_groups_group", "af_reservation_groups", ["group"])


def downgrade() -> None:
    op.drop_table("af_reservation_groups")
    op.drop_table("af_reservations")
