"""working-day calendar and policy profiles

Revision ID: 0003
Revises: 0002
"""

import datetime

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_year",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=True),
        sa.Column("entered_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by_id"], ["app_user.id"], name=op.f("fk_calendar_year_entered_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_year")),
    )
    op.create_table(
        "calendar_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"], ["calendar_year.year"], name=op.f("fk_calendar_day_year_calendar_year")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_day")),
        sa.UniqueConstraint("day", name=op.f("uq_calendar_day_day")),
    )
    with op.batch_alter_table("calendar_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_day_year"), ["year"], unique=False)

    revision_table = op.create_table(
        "calendar_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("changed_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_revision")),
    )
    # The one row every calendar change updates (an UPDATE, so concurrent changes serialise on it).
    op.bulk_insert(
        revision_table,
        [{"id": 1, "value": 0, "token": "initial", "changed_at": datetime.datetime.now(datetime.UTC)}],
    )

    op.create_table(
        "policy_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["app_user.id"], name=op.f("fk_policy_profile_created_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_policy_profile_region_id_region")
        ),
        sa.ForeignKeyConstraint(
            ["sector_code"], ["sector.code"], name=op.f("fk_policy_profile_sector_code_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_profile")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_policy_profile_key_version")),
    )
    with op.batch_alter_table("policy_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_profile_key"), ["key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_profile_key"))
    op.drop_table("policy_profile")
    op.drop_table("calendar_revision")
    with op.batch_alter_table("calendar_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_day_year"))
    op.drop_table("calendar_day")
    op.drop_table("calendar_year")
