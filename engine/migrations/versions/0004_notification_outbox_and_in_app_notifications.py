"""notification outbox and in-app notifications

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recipient_user_id", sa.Integer(), nullable=True),
        sa.Column("recipient_address", sa.String(length=500), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lock_owner", sa.String(length=100), nullable=True),
        sa.Column("lock_expires_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recipient_user_id"],
            ["app_user.id"],
            name=op.f("fk_outbox_message_recipient_user_id_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_message_idempotency_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_message_hazard_id"), ["hazard_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_message_state_next_attempt", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "in_app_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_in_app_notification_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_in_app_notification")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_in_app_notification_idempotency_key")),
    )
    with op.batch_alter_table("in_app_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_in_app_notification_hazard_id"), ["hazard_id"], unique=False)
        batch_op.create_index("ix_in_app_notification_user_read", ["user_id", "read_at"], unique=False)

    op.create_table(
        "user_contact",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_user_contact_user_id_app_user")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_contact")),
    )


def downgrade() -> None:
    op.drop_table("user_contact")
    with op.batch_alter_table("in_app_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_in_app_notification_user_read")
        batch_op.drop_index(batch_op.f("ix_in_app_notification_hazard_id"))
    op.drop_table("in_app_notification")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_state_next_attempt")
        batch_op.drop_index(batch_op.f("ix_outbox_message_hazard_id"))
    op.drop_table("outbox_message")
