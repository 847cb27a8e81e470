"""What changed between two versions of a task form or of a policy profile (pure functions).

The form and policy editors' version pages (``web/pages/design_history.py``) show these; the
diagrams have their own, :func:`engine.definitions.diff_versions`.

* :func:`diff_forms`: fields added, removed and changed (attribute by attribute: label, type,
  required, help, options/items, min/max, lengths, counts, phase, role …), the order of the
  fields both versions have, and the form's own title, description and routing.
* :func:`diff_policies`: values added, removed and changed (amount, unit, source, label, note),
  the escalation ladder's rungs added, removed and changed (level, notice kind, label, offset and
  the amount + unit of the value it names, issuing body and level, recipients, response deadline,
  template, place), the triggers, and the profile's title, base (``extends``) and which values
  the profile sets itself (``overrides``).

Both take stored documents (``FormVersion.content``, ``PolicyProfile.content``) or anything of
the same shape (a form's ``FormDefinition``, a sector's policy document of overrides). An
attribute left out reads as its default (``required: false`` and an absent ``required`` are the
same), so two documents that mean the same thing give an empty diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DefinitionInvalid
from .forms import FormDefinition
from .forms import parse_form_definition

__all__ = [
    "AttributeChange",
    "Entry",
    "EntryChange",
    "FormDiff",
    "PolicyDiff",
    "RUNG_ORDER",
    "diff_forms",
    "diff_policies",
]

#: field attributes whose absence means ``false``
_FALSE_BY_DEFAULT = frozenset({"required", "multiline", "integer", "multiple", "all_required"})
#: field attributes in the order a diff lists them (others follow, sorted)
_FIELD_ORDER = (
    "label",
    "type",
    "required",
    "help",
    "max_length",
    "min_length",
    "multiline",
    "min",
    "max",
    "integer",
    "role",
    "options",
    "multiple",
    "phase",
    "min_count",
    "max_count",
    "items",
    "all_required",
)
_FORM_ORDER = ("title", "description", "routing")
_VALUE_ORDER = ("value", "unit", "source", "label", "note")
#: a rung's attributes, in the order they are compared and shown
RUNG_ORDER = (
    "level",
    "kind",
    "label",
    "offset",
    "offset_value",
    "issuer",
    "issuer_level",
    "recipients",
    "response",
    "response_value",
    "template",
    "place",
)
_PROFILE_ORDER = ("title", "extends", "overrides")


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """One attribute whose value differs (``None``: absent on that side)."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Entry:
    """A field, value or rung that only one side has: its key, label and whole specification."""

    key: str
    label: str | None
    spec: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EntryChange:
    """A field, value or rung both sides have, with its attributes that differ (label: the new one)."""

    key: str
    label: str | None
    changes: tuple[AttributeChange, ...]

    def change(self, name: str) -> AttributeChange | None:
        return next((c for c in self.changes if c.name == name), None)


@dataclass(frozen=True, slots=True)
class FormDiff:
    """From one form version to another: fields by name, in the new version's order."""

    #: title, description, routing
    form: tuple[AttributeChange, ...]
    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    changed: tuple[EntryChange, ...]
    #: (old order, new order) of the fields both versions have, when it differs
    order: tuple[tuple[str, ...], tuple[str, ...]] | None

    @property
    def empty(self) -> bool:
        return not (self.form or self.added or self.removed or self.changed or self.order)


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """From one policy profile version (or document) to another; values and rungs by key."""

    #: title, extends, overrides
    profile: tuple[AttributeChange, ...]
    values_added: tuple[Entry, ...]
    values_removed: tuple[Entry, ...]
    values_changed: tuple[EntryChange, ...]
    rungs_added: tuple[Entry, ...]
    rungs_removed: tuple[Entry, ...]
    rungs_changed: tuple[EntryChange, ...]
    #: one per trigger whose rung differs (``None``: the trigger starts no rung on that side)
    triggers: tuple[AttributeChange, ...]

    @property
    def empty(self) -> bool:
        return not (
            self.profile
            or self.values_added
            or self.values_removed
            or self.values_changed
            or self.rungs_added
            or self.rungs_removed
            or self.rungs_changed
            or self.triggers
        )


# --- helpers ------------------------------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ordered(names: set[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(names - set(order))


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], order: tuple[str, ...]
) -> tuple[AttributeChange, ...]:
    def read(spec: Mapping[str, Any], name: str) -> Any:
        value = spec.get(name)
        if value is None and name in _FALSE_BY_DEFAULT:
            return False
        return value

    names = set(old) | set(new)
    return tuple(
        AttributeChange(name, read(old, name), read(new, name))
        for name in _ordered(names, order)
        if read(old, name) != read(new, name)
    )


def _label(spec: Mapping[str, Any]) -> str | None:
    label = spec.get("label")
    return label if isinstance(label, str) else None


def _entries(
    old: Mapping[str, Any], new: Mapping[str, Any], order: tuple[str, ...], keys: list[str]
) -> tuple[tuple[Entry, ...], tuple[Entry, ...], tuple[EntryChange, ...]]:
    """Added, removed, changed among two ``{key: spec}`` mappings; ``keys``: the order to list them."""
    added = tuple(Entry(k, _label(new[k]), new[k]) for k in keys if k in new and k not in old)
    removed = tuple(Entry(k, _label(old[k]), old[k]) for k in keys if k in old and k not in new)
    changed = []
    for key in keys:
        if key in old and key in new:
            changes = _changes(_mapping(old[key]), _mapping(new[key]), order)
            if changes:
                changed.append(EntryChange(key, _label(new[key]) or _label(old[key]), changes))
    return added, removed, tuple(changed)


# --- forms --------------------------------------------------------------------------------------------


def _form_document(form: FormDefinition | Mapping[str, Any]) -> Mapping[str, Any]:
    """The form as :meth:`FormDefinition.to_dict` writes it (money as ``"12.00"``, defaults left
    out); a document that does not parse is compared as it is."""
    if isinstance(form, FormDefinition):
        return form.to_dict()
    try:
        return parse_form_definition({**form, "version": 1}).to_dict()
    except DefinitionInvalid:
        return form


def _fields(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = document.get("fields")
    fields: dict[str, Mapping[str, Any]] = {}
    for spec in raw if isinstance(raw, list) else []:
        if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            fields.setdefault(spec["name"], spec)
    return fields


def diff_forms(old: FormDefinition | Mapping[str, Any], new: FormDefinition | Mapping[str, Any]) -> FormDiff:
    """Fields added, removed and changed from form ``old`` to ``new`` (matched by field name), the
    order of the fields both have, and changes of title, description and routing. The form's
    ``key`` and ``version`` are not compared."""
    a, b = _form_document(old), _form_document(new)
    old_fields, new_fields = _fields(a), _fields(b)
    keys = list(new_fields) + [name for name in old_fields if name not in new_fields]
    added, removed, changed = _entries(old_fields, new_fields, _FIELD_ORDER, keys)
    old_order = tuple(name for name in old_fields if name in new_fields)
    new_order = tuple(name for name in new_fields if name in old_fields)
    return FormDiff(
        form=_changes({k: a.get(k) for k in _FORM_ORDER}, {k: b.get(k) for k in _FORM_ORDER}, _FORM_ORDER),
        added=added,
        removed=removed,
        changed=changed,
        order=(old_order, new_order) if old_order != new_order else None,
    )


# --- policies -----------------------------------------------------------------------------------------


def _amount(values: Mapping[str, Any], name: object) -> dict[str, Any] | None:
    """The amount and unit of the value a rung names (``None``: no such value in the document)."""
    spec = values.get(name) if isinstance(name, str) else None
    if not isinstance(spec, Mapping):
        return None
    return {"value": spec.get("value"), "unit": spec.get("unit")}


def _rungs(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ladder's rungs, each with ``offset_value`` / ``response_value``: what the value it names
    holds, so changing a rung's time shows on the rung as well as on the value."""
    values = _mapping(document.get("values"))
    rungs = {}
    for key, spec in _mapping(_mapping(document.get("ladder")).get("rungs")).items():
        if not isinstance(spec, Mapping):
            continue
        rung = dict(spec)
        if not rung.get("template"):
            rung["template"] = rung.get("kind")
        rung["offset_value"] = _amount(values, rung.get("offset"))
        rung["response_value"] = _amount(values, rung.get("response"))
        rungs[str(key)] = rung
    return rungs


def diff_policies(old_doc: Mapping[str, Any], new_doc: Mapping[str, Any]) -> PolicyDiff:
    """Values, rungs and triggers added, removed and changed from policy document ``old_doc`` to
    ``new_doc`` (stored ``PolicyProfile.content`` or an editor document of the same shape)."""
    old_values = {str(k): v for k, v in _mapping(old_doc.get("values")).items() if isinstance(v, Mapping)}
    new_values = {str(k): v for k, v in _mapping(new_doc.get("values")).items() if isinstance(v, Mapping)}
    values = _entries(old_values, new_values, _VALUE_ORDER, sorted(set(old_values) | set(new_values)))
    old_rungs, new_rungs = _rungs(old_doc), _rungs(new_doc)
    rung_keys = sorted(
        set(old_rungs) | set(new_rungs),
        key=lambda k: (_mapping(new_rungs.get(k) or old_rungs.get(k)).get("level", 99), k),
    )
    rungs = _entries(old_rungs, new_rungs, RUNG_ORDER, rung_keys)
    old_triggers = _mapping(_mapping(old_doc.get("ladder")).get("triggers"))
    new_triggers = _mapping(_mapping(new_doc.get("ladder")).get("triggers"))
    triggers = tuple(
        AttributeChange(t, old_triggers.get(t), new_triggers.get(t))
        for t in sorted(set(old_triggers) | set(new_triggers))
        if old_triggers.get(t) != new_triggers.get(t)
    )

    def profile(doc: Mapping[str, Any]) -> dict[str, Any]:
        overrides = doc.get("overrides")
        return {
            "title": doc.get("title"),
            "extends": doc.get("extends"),
            "overrides": sorted(overrides) if isinstance(overrides, list) else overrides,
        }

    return PolicyDiff(
        profile=_changes(profile(old_doc), profile(new_doc), _PROFILE_ORDER),
        values_added=values[0],
        values_removed=values[1],
        values_changed=values[2],
        rungs_added=rungs[0],
        rungs_removed=rungs[1],
        rungs_changed=rungs[2],
        triggers=triggers,
    )
