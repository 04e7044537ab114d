"""The gateway's cluster options as JSON for the panel, and a request's values checked
against them.

The panel draws its "New cluster" form from :func:`options_spec` (the same shape as
the gateway's own ``GET /api/v1/options``: field, label, default and a type spec with
the bounds). :func:`apply_options` sets the values a browser sent on the gateway's
``Options`` object, which checks types and bounds itself; the gateway checks them
once more when the cluster is submitted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dask_gateway.options import Field, Options

MAX_FIELDS = 64


class OptionsError(ValueError):
    """A cluster option the user sent is unknown or out of bounds (HTTP 400)."""


def _type_name(field: Field) -> str:
    for name, cls in Field._field_types.items():
        if type(field) is cls:
            return name
    return "string"


def field_spec(field: Field) -> dict:
    """One gateway option as the panel's form draws it: ``{"field", "label", "default",
    "spec": {"type", "min"?, "max"?, "options"?}}``. Called by :func:`options_spec`."""
    spec: dict = {"type": _type_name(field)}
    for attr in ("min", "max"):
        if getattr(field, attr, None) is not None:
            spec[attr] = getattr(field, attr)
    if hasattr(field, "options"):
        spec["options"] = list(field.options)
    return {"field": field.field, "label": field.label, "default": field.get(), "spec": spec}


def options_spec(options: Options) -> list[dict]:
    """``[{"field", "label", "default", "spec": {"type", "min"?, "max"?, "options"?}}]``"""
    # dask_gateway keeps the fields (with their bounds) in Options._fields; the mapping
    # interface gives only the values
    return [field_spec(f) for f in options._fields.values()]


def apply_options(options: Options, values) -> Options:
    """Set ``values`` (the request's JSON object) on ``options``; raise :class:`OptionsError`
    with a sentence naming the field when a value is unknown, of the wrong type or out
    of bounds. ``options`` is left with the gateway's defaults for fields not sent."""
    if not isinstance(values, Mapping):
        raise OptionsError('Send the cluster options as a JSON object, e.g. {"worker_cores": 1}.')
    if len(values) > MAX_FIELDS:
        raise OptionsError("Too many cluster options in the request.")
    known = list(options)
    for key, value in values.items():
        if key not in known:
            raise OptionsError(
                f"{str(key)[:40]!r} is not a cluster option here; the options are "
                f"{', '.join(known)}."
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionsError(f"{key} must be a finite number.")
        try:
            options[key] = value
        except (TypeError, ValueError) as e:
            raise OptionsError(f"{e}.".replace("..", ".")) from None
    return options
