"""Checks a view's definition must pass before it is saved or published, so training never meets
the problem later: the datasets of one view must agree on the type of every column they share
(a view's manifest concatenates them; int64 here and string there would fail in to_arrow())."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from ..errors import ViewError


def check_column_types(view: str, schemas: Mapping[str, pa.Schema]) -> None:
    """Raise ViewError naming the first column whose types across `schemas` (dataset -> schema) cannot unify."""
    if len(schemas) < 2:
        return
    try:
        pa.unify_schemas([s.remove_metadata() for s in schemas.values()], promote_options="permissive")
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    seen: dict[str, tuple[str, pa.DataType]] = {}
    for dataset, schema in sorted(schemas.items()):
        for field in schema:
            if field.name not in seen:
                seen[field.name] = (dataset, field.type)
                continue
            first, first_type = seen[field.name]
            try:
                pa.unify_schemas([pa.schema([pa.field(field.name, first_type)]), pa.schema([field])],
                                 promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise ViewError(
                    f"view {view!r}: column {field.name!r} is {first_type} in dataset {first!r} but {field.type} in "
                    f"dataset {dataset!r}; a view's datasets must agree on the types of the columns they share. "
                    "Rename the column in one dataset, or leave one dataset out of the view"
                ) from None
    raise ViewError(f"view {view!r}: the datasets' schemas cannot be combined")
