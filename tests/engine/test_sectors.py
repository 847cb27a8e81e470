"""engine.sectors: deploying the sector variants and binding them to their sectors and grades."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from engine import definitions
from engine import sectors
from engine.errors import NotFound
from engine.models import DefinitionBinding
from engine.models import DefinitionVersion
from engine.models import Sector


def test_binds_every_variant_to_its_sectors_and_grades(sessions, settings, ctx):
    with sessions.begin() as session:
        bindings = sectors.bind_sector_variants(session, settings.processes_dir, ctx.forms)
        bound = {(b.sector_code, b.grade): b.process_key for b in bindings}
        assert bound == {
            ("fire", "major"): "hazard_major_fire",
            ("mines", "major"): "hazard_major_mines",
            ("hazchem", "major"): "hazard_major_hazchem",
            ("construction", "general"): "hazard_general_construction",
            ("construction", "major"): "hazard_major_construction",
            ("road", "general"): "hazard_general_road",
            ("gas", "major"): "hazard_major_gas",
        }
        for (sector, grade), key in bound.items():
            assert definitions.resolve_definition(session, grade=grade, sector_code=sector).process_key == key
        # grades without a variant keep the default loops; prominent runs the general variant
        assert definitions.resolve_definition(session, grade="general", sector_code="fire").process_key == (
            "hazard_general"
        )
        assert definitions.resolve_definition(session, grade="major", sector_code="road").process_key == (
            "hazard_major"
        )
        assert definitions.resolve_definition(
            session, grade="prominent", sector_code="construction"
        ).process_key == ("hazard_general_construction")
        # the shared verification is deployed with every variant but never bound
        assert (
            session.scalar(
                select(func.count())
                .select_from(DefinitionBinding)
                .where(DefinitionBinding.process_key == sectors.SHARED_PROCESS_KEY)
            )
            == 0
        )


def test_redeploying_keeps_the_versions(sessions, settings, ctx):
    with sessions.begin() as session:
        first = sectors.deploy_sector_variants(session, settings.processes_dir, ctx.forms)
        count = session.scalar(select(func.count()).select_from(DefinitionVersion))
        again = sectors.deploy_sector_variants(session, settings.processes_dir, ctx.forms)
        assert [v.id for v in again] == [v.id for v in first]
        assert session.scalar(select(func.count()).select_from(DefinitionVersion)) == count
        assert [v.process_key for v in first] == [v.process_key for v in sectors.VARIANTS]


def test_defaults_find_the_shipped_files_and_forms(sessions):
    with sessions.begin() as session:
        bindings = sectors.bind_sector_variants(session, only=["road"])
        assert [(b.sector_code, b.grade, b.process_key) for b in bindings] == [
            ("road", "general", "hazard_general_road")
        ]


def test_unknown_variant_is_refused(sessions):
    with sessions.begin() as session, pytest.raises(NotFound):
        sectors.bind_sector_variants(session, only=["aviation"])


def test_missing_sector_is_skipped_unless_asked_for(sessions, settings, ctx, monkeypatch):
    # a variant for a sector this database does not have (the road file, bound to 民航)
    aviation = sectors.SectorVariant(
        "aviation", "road.bpmn", "hazard_general_road", ("aviation",), ("general",)
    )
    monkeypatch.setattr(sectors, "VARIANTS", (*sectors.VARIANTS, aviation))
    with sessions.begin() as session:
        assert session.get(Sector, "aviation") is None
        bindings = sectors.bind_sector_variants(session, settings.processes_dir, ctx.forms)
        assert "aviation" not in {b.sector_code for b in bindings}
        assert len(bindings) == 7
        with pytest.raises(NotFound):
            sectors.bind_sector_variants(session, settings.processes_dir, ctx.forms, only=["aviation"])
