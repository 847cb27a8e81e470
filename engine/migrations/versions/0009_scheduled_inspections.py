"""scheduled inspections

Revision ID: 0009
Revises: 0008

``inspection_occurrence``: one row per inspection plan, subject (enterprise or region) and
period, generated from policy values by ``engine.inspections`` (DOMAIN §2.3). The unique
``(plan_key, subject_id, period_start)`` makes generation idempotent under concurrent sweeps.
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspection_occurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_key", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("assignee_role", sa.String(length=32), nullable=False),
        sa.Column("assignee_scope", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("due_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("missed_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_by_id", sa.Integer(), nullable=True),
        sa.Column("completed_late", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("hazards_found", sa.Integer(), nullable=False),
        sa.Column("hazard_ids", sa.JSON(), nullable=True),
        sa.Column("cadence_value", sa.Integer(), nullable=False),
        sa.Column("cadence_unit", sa.String(length=32), nullable=False),
        sa.Column("policy_profile_id", sa.Integer(), nullable=True),
        sa.Column("policy_key", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["completed_by_id"],
            ["app_user.id"],
            name=op.f("fk_inspection_occurrence_completed_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name=op.f("fk_inspection_occurrence_enterprise_id_enterprise"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_profile_id"],
            ["policy_profile.id"],
            name=op.f("fk_inspection_occurrence_policy_profile_id_policy_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_inspection_occurrence_region_id_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_occurrence")),
        sa.UniqueConstraint(
            "plan_key",
            "subject_id",
            "period_start",
            name=op.f("uq_inspection_occurrence_plan_key_subject_id_period_start"),
        ),
    )
    with op.batch_alter_table("inspection_occurrence", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspection_occurrence_state_period_end", ["state", "period_end"], unique=False
        )
        batch_op.create_index(
            "ix_inspection_occurrence_plan_period_end", ["plan_key", "period_end"], unique=False
        )
        batch_op.create_index(
            "ix_inspection_occurrence_enterprise_state", ["enterprise_id", "state"], unique=False
        )
        batch_op.create_index(
            "ix_inspection_occurrence_scope",
            ["region_path", "state"],
            unique=False,
            postgresql_ops={"region_path": "varchar_pattern_ops"},
        )


def downgrade() -> None:
    with op.batch_alter_table("inspection_occurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_inspection_occurrence_scope")
        batch_op.drop_index("ix_inspection_occurrence_enterprise_state")
        batch_op.drop_index("ix_inspection_occurrence_plan_period_end")
        batch_op.drop_index("ix_inspection_occurrence_state_period_end")
    op.drop_table("inspection_occurrence")
