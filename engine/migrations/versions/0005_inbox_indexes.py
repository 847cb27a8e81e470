"""inbox indexes: the hazard scope index

Revision ID: 0005
Revises: 0004

``ix_hazard_scope`` (region_path, sector_code, lead_department_id, id) serves the scope filters of
the task lists and the hazard visibility clause (``region_path LIKE '/34/3418/341821/%'`` plus
sector and lead department) as an index-only range scan instead of a sequential scan of the wide
``hazard`` table. On PostgreSQL ``region_path`` uses ``varchar_pattern_ops``: under a non-C
collation a plain btree cannot serve a LIKE prefix at all.

Measured with bench/http_inbox.py (100,000 open work items, PostgreSQL 15): the 逾期 (overdue)
count of the inbox page for a county department reviewer (scope ~20 % of the hazards) and for the
county 安委办 (~70 %) touches ~3,300 buffers instead of ~9,900, and runs in about half the time;
no other statement of /tasks or /api/v1/tasks changes plan.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_hazard_scope",
        "hazard",
        ["region_path", "sector_code", "lead_department_id", "id"],
        unique=False,
        postgresql_ops={"region_path": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_hazard_scope", table_name="hazard")
