"""designs departments edit: form versions, working drafts, the design log; pins

Revision ID: 0011
Revises: 0010

``form_version``: immutable published task forms per (form_key, scope); ``design_draft``: the
shared working copy of a diagram, form or policy profile per scope, with a revision counter;
``design_event``: the design audit log. ``definition_version.sector_code`` names the sector whose
lead department owns a process; ``process_instance.form_pins`` and ``work_item.form_version_id``
pin form versions to running instances.
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_key", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["app_user.id"], name=op.f("fk_form_version_created_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["sector_code"], ["sector.code"], name=op.f("fk_form_version_sector_code_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_version")),
        sa.UniqueConstraint(
            "form_key", "scope", "version", name=op.f("uq_form_version_form_key_scope_version")
        ),
    )
    with op.batch_alter_table("form_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_version_form_key"), ["form_key"], unique=False)

    op.create_table(
        "design_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sector_code"], ["sector.code"], name=op.f("fk_design_draft_sector_code_sector")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["app_user.id"], name=op.f("fk_design_draft_updated_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_draft")),
        sa.UniqueConstraint("kind", "key", "scope", name=op.f("uq_design_draft_kind_key_scope")),
    )

    op.create_table(
        "design_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("sector_code", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["app_user.id"], name=op.f("fk_design_event_actor_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["sector_code"], ["sector.code"], name=op.f("fk_design_event_sector_code_sector")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_event")),
    )
    with op.batch_alter_table("design_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_design_event_key"), ["key"], unique=False)
        batch_op.create_index(batch_op.f("ix_design_event_at"), ["at"], unique=False)

    with op.batch_alter_table("definition_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sector_code", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_definition_version_sector_code_sector"), "sector", ["sector_code"], ["code"]
        )
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form_pins", sa.JSON(), nullable=True))
    with op.batch_alter_table("work_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form_version_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_work_item_form_version_id_form_version"),
            "form_version",
            ["form_version_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("work_item", schema=None) as batch_op:
        batch_op.drop_constraint("fk_work_item_form_version_id_form_version", type_="foreignkey")
        batch_op.drop_column("form_version_id")
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.drop_column("form_pins")
    with op.batch_alter_table("definition_version", schema=None) as batch_op:
        batch_op.drop_constraint("fk_definition_version_sector_code_sector", type_="foreignkey")
        batch_op.drop_column("sector_code")
    with op.batch_alter_table("design_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_design_event_at"))
        batch_op.drop_index(batch_op.f("ix_design_event_key"))
    op.drop_table("design_event")
    op.drop_table("design_draft")
    with op.batch_alter_table("form_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_version_form_key"))
    op.drop_table("form_version")
