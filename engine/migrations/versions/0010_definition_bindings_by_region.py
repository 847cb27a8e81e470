"""definition bindings by region, with history

Revision ID: 0010
Revises: 0009

``definition_binding.region_id``: a binding may apply to one sector, one region subtree, or both
(the most specific wins, like policy profiles); the unique key becomes (grade, sector, region).
``definition_binding_history``: every bind, rebind and rollback with who, when, and the binding
before and after, so ``rollback_binding`` can restore the previous version.
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("definition_binding", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_definition_binding_region_id_region"), "region", ["region_id"], ["id"]
        )
        batch_op.drop_constraint("uq_definition_binding_grade_sector_code", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_definition_binding_grade_sector_code_region_id"),
            ["grade", "sector_code", "region_id"],
        )

    op.create_table(
        "definition_binding_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=32), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("process_key", sa.String(length=100), nullable=True),
        sa.Column("definition_version_id", sa.Integer(), nullable=True),
        sa.Column("effective_version_id", sa.Integer(), nullable=True),
        sa.Column("previous_process_key", sa.String(length=100), nullable=True),
        sa.Column("previous_definition_version_id", sa.Integer(), nullable=True),
        sa.Column("previous_effective_version_id", sa.Integer(), nullable=True),
        sa.Column("undoes_id", sa.Integer(), nullable=True),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["app_user.id"],
            name=op.f("fk_definition_binding_history_changed_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["definition_version_id"],
            ["definition_version.id"],
            name="fk_binding_history_version",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["effective_version_id"],
            ["definition_version.id"],
            name="fk_binding_history_effective",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["previous_definition_version_id"],
            ["definition_version.id"],
            name="fk_binding_history_previous_version",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["previous_effective_version_id"],
            ["definition_version.id"],
            name="fk_binding_history_previous_effective",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_definition_binding_history_region_id_region")
        ),
        sa.ForeignKeyConstraint(
            ["sector_code"], ["sector.code"], name=op.f("fk_definition_binding_history_sector_code_sector")
        ),
        sa.ForeignKeyConstraint(
            ["undoes_id"],
            ["definition_binding_history.id"],
            name="fk_binding_history_undoes",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_definition_binding_history")),
    )
    with op.batch_alter_table("definition_binding_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_definition_binding_history_key", ["grade", "sector_code", "region_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("definition_binding_history", schema=None) as batch_op:
        batch_op.drop_index("ix_definition_binding_history_key")
    op.drop_table("definition_binding_history")
    # Region-scoped bindings have no place in the old schema (their key would collide).
    op.execute("DELETE FROM definition_binding WHERE region_id IS NOT NULL")
    with op.batch_alter_table("definition_binding", schema=None) as batch_op:
        batch_op.drop_constraint("uq_definition_binding_grade_sector_code_region_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_definition_binding_grade_sector_code"), ["grade", "sector_code"]
        )
        batch_op.drop_constraint("fk_definition_binding_region_id_region", type_="foreignkey")
        batch_op.drop_column("region_id")
