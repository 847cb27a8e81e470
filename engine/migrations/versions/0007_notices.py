"""notices: escalation notices with document numbers

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("rung", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("issuer_key", sa.String(length=64), nullable=False),
        sa.Column("issuer_name", sa.String(length=100), nullable=False),
        sa.Column("issuer_abbreviation", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("document_number", sa.String(length=100), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("target_departments", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("due_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("response_due_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("meeting_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acknowledged_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("responded_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("responded_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["app_user.id"], name=op.f("fk_notice_acknowledged_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["app_user.id"], name=op.f("fk_notice_closed_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprise.id"], name=op.f("fk_notice_enterprise_id_enterprise")
        ),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazard.id"], name=op.f("fk_notice_hazard_id_hazard")),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["process_instance.id"], name=op.f("fk_notice_instance_id_process_instance")
        ),
        sa.ForeignKeyConstraint(
            ["responded_by_id"], ["app_user.id"], name=op.f("fk_notice_responded_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notice_dedupe_key")),
        sa.UniqueConstraint("document_number", name=op.f("uq_notice_document_number")),
        sa.UniqueConstraint(
            "issuer_key", "year", "kind", "sequence", name=op.f("uq_notice_issuer_key_year_kind_sequence")
        ),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index("ix_notice_hazard_issued", ["hazard_id", "issued_at"], unique=False)
        batch_op.create_index("ix_notice_status_issued", ["status", "issued_at"], unique=False)
        batch_op.create_index("ix_notice_issuer_year", ["issuer_key", "year"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_issuer_year")
        batch_op.drop_index("ix_notice_status_issued")
        batch_op.drop_index("ix_notice_hazard_issued")
        batch_op.drop_index(batch_op.f("ix_notice_enterprise_id"))
    op.drop_table("notice")
