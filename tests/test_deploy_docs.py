"""The configuration reference of the docs site, generated from the traitlets help."""

from __future__ import annotations

import sys

import pytest
from harness.deploy_chart import ROOT
from sphinx.errors import ExtensionError
from traitlets import Integer, Unicode
from traitlets.config import Configurable

sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import traitlets_reference


def test_reference_covers_every_component_and_their_help():
    classes = {c.__name__ for c in traitlets_reference.configurable_classes()}
    assert {
        "IAMAuthenticator",
        "ProfileSpawner",
        "KubeProfiles",
        "AccountingService",
        "QuotaPolicy",
        "AccountingClient",
        "AFSSH",
    } <= classes
    text = traitlets_reference.render(traitlets_reference.configurable_classes())
    assert "### `ProfileSpawner.profiles`" in text
    assert "The profile catalogue" in text


def test_an_option_without_help_fails_the_build():
    class Careless(Configurable):
        documented = Unicode("", config=True, help="What it does.")
        forgotten = Integer(1, config=True)

    with pytest.raises(ExtensionError, match=r"options without help=: .*Careless\.forgotten"):
        traitlets_reference.render([Careless])
