"""Sphinx extension: the configuration reference, generated from jhub_af's traitlets.

At every build it imports each module of jhub_af, finds every ``Configurable`` class
defined there with options (``config=True`` traits), and writes
``reference/configuration.md``: one section per class, one entry per option with its
type, default and ``help=``. An option without help fails the build, naming it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import textwrap
from pathlib import Path

from sphinx.errors import ExtensionError
from traitlets.config import Configurable

# modules that need a part this build does not load are reported, never skipped silently
PACKAGE = "jhub_af"


def configurable_classes() -> list[type]:
    package = importlib.import_module(PACKAGE)
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        if ".alembic" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Configurable)
                and cls.__module__ == module.__name__
                and cls.class_own_traits(config=True)
            ):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


def _default(trait) -> str:
    try:
        value = trait.default_value_repr()
    except Exception:
        value = repr(trait.default_value)
    return value if len(value) < 200 else value[:197] + "..."


def render(classes: list[type]) -> str:
    missing = []
    lines = [
        "# Configuration reference",
        "",
        "Every option of jhub_af's configurable classes, generated from their "
        "traitlets `help` when the docs are built. Set them in `jupyterhub_config.py` "
        "(`c.ProfileSpawner.profiles = [...]`), in the z2jh chart's `hub.config`, or in "
        "the service's own config file (af-accounting, af-ssh, the Dask Gateway).",
        "",
    ]
    for cls in classes:
        lines += [f"## {cls.__name__}", "", f"`{cls.__module__}.{cls.__qualname__}`", ""]
        doc = inspect.getdoc(cls)
        if doc:
            lines += [doc.splitlines()[0], ""]
        for name, trait in sorted(cls.class_own_traits(config=True).items()):
            help_text = textwrap.dedent(trait.help or "").strip()
            if not help_text:
                missing.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
                continue
            lines += [
                f"### `{cls.__name__}.{name}`",
                "",
                f"{type(trait).__name__}, default `{_default(trait)}`",
                "",
                "```text",
                help_text,
                "```",
                "",
            ]
    if missing:
        raise ExtensionError("options without help=: " + ", ".join(missing))
    return "\n".join(lines)


def generate(app) -> None:
    out = Path(app.srcdir) / "reference" / "configuration.md"
    out.parent.mkdir(exist_ok=True)
    text = render(configurable_classes())
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True}
