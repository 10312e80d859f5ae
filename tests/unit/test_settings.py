"""Settings: every one optional with the contract's default; bad values are clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from handler.rules.settings import (
    DEFAULT_PARALLEL_READ_PART_BYTES,
    ConfigurationError,
    ParallelRead,
    Settings,
)


def test_defaults_with_no_environment() -> None:
    assert Settings.from_env({}) == Settings(
        result_bucket=None,
        input_suffix="market_infos.json",
        result_name="total_price.json",
        max_input_bytes=1073741824,
    )


def test_empty_values_mean_default() -> None:
    # docs/behaviour.md, "Settings": an empty value counts as unset, INPUT_SUFFIX's too.
    empty = {"RESULT_BUCKET": "", "MAX_INPUT_BYTES": "", "INPUT_SUFFIX": "", "RESULT_NAME": ""}
    assert Settings.from_env(empty) == Settings()


def test_environment_overrides() -> None:
    env = {
        "RESULT_BUCKET": "results",
        "INPUT_SUFFIX": "prices.json",
        "RESULT_NAME": "sum.json",
        "MAX_INPUT_BYTES": "1024",
    }
    assert Settings.from_env(env) == Settings("results", "prices.json", "sum.json", 1024)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULT_NAME", "totals.json")
    assert Settings.from_env().result_name == "totals.json"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MAX_INPUT_BYTES": "1GB"}, "whole number"),
        ({"MAX_INPUT_BYTES": "-1"}, "zero or more"),
        ({"RESULT_NAME": "a/b.json"}, "without '/'"),
        ({"RESULT_NAME": "copy_market_infos.json"}, "loop"),
        ({"INPUT_SUFFIX": ".json"}, "loop"),  # total_price.json would trigger again
    ],
)
def test_bad_settings_are_configuration_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env(env)


def test_empty_suffix_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="INPUT_SUFFIX"):
        Settings(input_suffix="")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"input_suffix": ""}, "INPUT_SUFFIX must not be empty"),
        ({"result_name": ""}, "RESULT_NAME must be a non-empty name without '/'"),
        ({"result_name": "a/b.json"}, "RESULT_NAME must be a non-empty name without '/'"),
        ({"max_input_bytes": -1}, "MAX_INPUT_BYTES must be zero or more"),
        (
            {"parallel_read": ParallelRead(min_bytes=2 * DEFAULT_PARALLEL_READ_PART_BYTES - 1)},
            "PARALLEL_READ_BYTES must be at least twice PARALLEL_READ_PART_BYTES",
        ),
    ],
)
def test_each_bad_setting_says_which_and_why_in_its_own_words(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings(**settings)
    assert str(raised.value) == message
