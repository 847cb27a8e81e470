"""scheduler: timer job leases, backoff and incidents

Revision ID: 0006
Revises: 0005

``timer_job.available_at``: a failed job is not claimed again before its backoff has passed (NULL:
as soon as it is due). ``incident``: one row per timer job the scheduler gave up on, listed and
retried by administrators (``hazardloop incidents``, ``/admin/incidents``). Jobs that are already
dead get an open incident each (their due time standing in for when they died), so they stay
listed and can be retried.
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timer_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("available_at", engine.models.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timer_job_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", engine.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazard.id"], name=op.f("fk_incident_hazard_id_hazard")),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["process_instance.id"], name=op.f("fk_incident_instance_id_process_instance")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["app_user.id"], name=op.f("fk_incident_resolved_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["timer_job_id"], ["timer_job.id"], name=op.f("fk_incident_timer_job_id_timer_job")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_hazard_id"), ["hazard_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_timer_job_id"), ["timer_job_id"], unique=False)
        batch_op.create_index("ix_incident_state_created", ["state", "created_at"], unique=False)
    op.execute(
        "INSERT INTO incident (timer_job_id, instance_id, hazard_id, error, attempts, state, created_at) "
        "SELECT id, instance_id, hazard_id, COALESCE(last_error, '(迁移前已失败，原因未记录)'), attempts, "
        "'open', due_at FROM timer_job WHERE state = 'dead'"
    )


def downgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_state_created")
        batch_op.drop_index(batch_op.f("ix_incident_timer_job_id"))
        batch_op.drop_index(batch_op.f("ix_incident_hazard_id"))
    op.drop_table("incident")
    with op.batch_alter_table("timer_job", schema=None) as batch_op:
        batch_op.drop_column("available_at")
