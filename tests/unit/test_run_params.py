"""The trigger form's Params (dry run, trailing days) change only the run they are given to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from returns_recon.settings import ReconSettings, with_run_params

pytestmark = pytest.mark.unit


def test_empty_params_keep_the_deployment_settings() -> None:
    settings = ReconSettings(postings_dry_run=False, trailing_days=14)
    assert with_run_params(settings, None) is settings
    assert with_run_params(settings, {"dry_run": None, "trailing_days": None}) is settings


def test_params_override_their_settings_and_nothing_else() -> None:
    settings = ReconSettings(postings_dry_run=False, trailing_days=14, max_postings_per_run=7)
    run = with_run_params(settings, {"dry_run": True, "trailing_days": 3})
    assert run.postings_dry_run is True
    assert run.trailing_days == 3
    assert run.max_postings_per_run == 7
    assert settings.postings_dry_run is False  # the deployment's settings are untouched


def test_a_bad_param_fails_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="trailing_days"):
        with_run_params(ReconSettings(), {"trailing_days": -1})
