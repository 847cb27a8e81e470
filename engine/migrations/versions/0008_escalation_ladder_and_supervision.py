"""escalation ladder and supervision track

Revision ID: 0008
Revises: 0007

``process_instance.kind``: a hazard's rectification loop (``loop``) and its 挂牌督办 track
(``supervision``, processes/supervision.bpmn) are separate instances of the same hazard.
``hazard.escalation_suppressed_until``: imported hazards with past deadlines may have their
escalation suppressed until a given date (DESIGN §6 catch-up and back-fill).
"""

import sqlalchemy as sa
from alembic import op

import engine.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="loop", nullable=False))
        batch_op.create_index("ix_process_instance_hazard_kind", ["hazard_id", "kind"], unique=False)
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalation_suppressed_until", engine.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.drop_column("escalation_suppressed_until")
    with op.batch_alter_table("process_instance", schema=None) as batch_op:
        batch_op.drop_index("ix_process_instance_hazard_kind")
        batch_op.drop_column("kind")
