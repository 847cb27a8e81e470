"""Sector variants of the loop (DOMAIN §7): deploy ``processes/sectors/*.bpmn`` and bind them.

Each variant file holds one executable variant process and an identical copy of the shared
verification process ``hazard_verification`` (``processes/sectors/shared_verification.bpmn``),
which the variant calls with a ``bpmn:callActivity``. SpiffWorkflow resolves a called process
only among the processes of the document being parsed (``engine.bpmn.parse_bpmn`` parses one
file), so the called process travels in the same file; its spec is stored inside the variant's
own definition version (``spec_json["subprocess_specs"]``), so a running hazard never depends on
another definition row. ``shared_verification.bpmn`` is the canonical text of that process and is
not deployed on its own; the tests check that every variant carries an identical copy. (Since
:func:`engine.definitions.deploy` stores every executable process of a file, each variant file
also records a version of ``hazard_verification``; it is never bound.)
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from .config import Settings
from .definitions import bind
from .definitions import deploy_file
from .definitions import shipped_forms
from .errors import NotFound
from .forms import FormDefinition
from .models import DefinitionBinding
from .models import DefinitionVersion
from .models import Sector

#: the called process every variant embeds, and the file holding its canonical text
SHARED_PROCESS_KEY = "hazard_verification"
SHARED_FILE = "shared_verification.bpmn"


@dataclass(frozen=True, slots=True)
class SectorVariant:
    """One variant diagram: its file in ``processes/sectors/``, process id, sectors and grades."""

    key: str
    filename: str
    process_key: str
    sector_codes: tuple[str, ...]
    grades: tuple[str, ...]


#: the shipped variants (sector codes as seeded by :func:`engine.demo.seed_organisations`)
VARIANTS: tuple[SectorVariant, ...] = (
    SectorVariant("fire", "fire.bpmn", "hazard_major_fire", ("fire",), ("major",)),
    SectorVariant("mines", "mines.bpmn", "hazard_major_mines", ("mines",), ("major",)),
    SectorVariant("hazchem", "hazchem.bpmn", "hazard_major_hazchem", ("hazchem",), ("major",)),
    SectorVariant(
        "construction_general",
        "construction_general.bpmn",
        "hazard_general_construction",
        ("construction",),
        ("general",),
    ),
    SectorVariant(
        "construction_major",
        "construction_major.bpmn",
        "hazard_major_construction",
        ("construction",),
        ("major",),
    ),
    SectorVariant("road", "road.bpmn", "hazard_general_road", ("road",), ("general",)),
    SectorVariant("gas", "gas.bpmn", "hazard_major_gas", ("gas",), ("major",)),
)


def variant(key: str) -> SectorVariant:
    """The shipped variant called ``key``.

    :raises NotFound: no such variant.
    """
    for candidate in VARIANTS:
        if candidate.key == key:
            return candidate
    raise NotFound("行业流程变体", key)


def sectors_dir(processes_dir: Path) -> Path:
    return processes_dir / "sectors"


def deploy_sector_variants(
    session: Session,
    processes_dir: Path,
    forms: Mapping[str, FormDefinition],
    *,
    only: Iterable[str] | None = None,
) -> list[DefinitionVersion]:
    """Deploy the variant files (each with its copy of the shared verification process), each
    owned by its first sector when that sector exists (its lead department edits it); nothing is
    bound, so hazards keep starting on the national loops until a department binds its variant.

    Identical files keep their versions (:func:`engine.definitions.deploy`). Returns the
    versions of the variant processes, in :data:`VARIANTS` order.

    :raises DefinitionInvalid: a variant file is refused by the deploy gate.
    :raises NotFound: ``only`` names an unknown variant.
    """
    chosen = [variant(k) for k in only] if only is not None else list(VARIANTS)
    existing = set(session.scalars(select(Sector.code)))
    versions = []
    for item in chosen:
        result = deploy_file(session, sectors_dir(processes_dir) / item.filename, forms)
        versions.extend(v for v in result.versions if v.process_key == item.process_key)
        owner = item.sector_codes[0]
        if owner in existing:
            # the owning sector's lead department edits the variant (engine.design); a version
            # that has an owner already keeps it
            session.execute(
                update(DefinitionVersion)
                .where(
                    DefinitionVersion.process_key == item.process_key, DefinitionVersion.sector_code.is_(None)
                )
                .values(sector_code=owner)
                .execution_options(synchronize_session="fetch")
            )
    return versions


def bind_sector_variants(
    session: Session,
    processes_dir: Path | None = None,
    forms: Mapping[str, FormDefinition] | None = None,
    *,
    only: Iterable[str] | None = None,
) -> list[DefinitionBinding]:
    """Deploy the sector variants, give each to its sector and bind it to its sectors for its grades.

    The variant's versions get ``sector_code`` = its first sector: that sector's lead department
    owns (edits) it, see :mod:`engine.design`; a version that has an owner already keeps it.

    New hazards of a bound (sector, grade) then start on the variant
    (:func:`engine.definitions.resolve_definition` prefers a sector binding to the grade's
    default). Without ``only`` every shipped variant is bound, skipping sectors that do not
    exist in this database; a variant named in ``only`` must have all its sectors.

    :raises NotFound: ``only`` names an unknown variant, or one whose sector does not exist.
    :raises DefinitionInvalid: a variant file is refused by the deploy gate.
    """
    processes_dir = processes_dir or Settings().processes_dir
    forms = forms if forms is not None else shipped_forms(processes_dir)
    keys = list(only) if only is not None else [v.key for v in VARIANTS]
    deploy_sector_variants(session, processes_dir, forms, only=keys)
    existing = set(session.scalars(select(Sector.code)))
    bindings = []
    for key in keys:
        item = variant(key)
        for code in item.sector_codes:
            if code not in existing:
                if only is not None:
                    raise NotFound("行业", code)
                continue
            for grade in item.grades:
                bindings.append(bind(session, grade=grade, process_key=item.process_key, sector_code=code))
    return bindings
