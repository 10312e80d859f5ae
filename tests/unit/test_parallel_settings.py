"""The parallel read's settings (``PARALLEL_READ_*``): defaults, overrides, and values the
function cannot work with raised as configuration errors."""

from __future__ import annotations

import pytest

from handler.rules.settings import ConfigurationError, ParallelRead, Settings

MiB = 1024 * 1024


def test_defaults() -> None:
    assert Settings.from_env({}).parallel_read == ParallelRead(
        min_bytes=64 * MiB, part_bytes=8 * MiB, concurrency=5
    )


def test_environment_overrides() -> None:
    env = {
        "PARALLEL_READ_BYTES": str(32 * MiB),
        "PARALLEL_READ_PART_BYTES": str(16 * MiB),
        "PARALLEL_READ_CONCURRENCY": "4",
    }
    assert Settings.from_env(env).parallel_read == ParallelRead(32 * MiB, 16 * MiB, 4)


def test_empty_values_mean_default() -> None:
    env = {
        "PARALLEL_READ_BYTES": "",
        "PARALLEL_READ_PART_BYTES": "",
        "PARALLEL_READ_CONCURRENCY": "",
    }
    assert Settings.from_env(env).parallel_read == ParallelRead()


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PARALLEL_READ_BYTES": "64MB"}, "PARALLEL_READ_BYTES must be a whole number"),
        ({"PARALLEL_READ_PART_BYTES": "8.5"}, "PARALLEL_READ_PART_BYTES must be a whole number"),
        ({"PARALLEL_READ_CONCURRENCY": "many"}, "PARALLEL_READ_CONCURRENCY must be a whole"),
        ({"PARALLEL_READ_PART_BYTES": str(MiB - 1)}, "at least 1048576"),
        ({"PARALLEL_READ_CONCURRENCY": "0"}, "from 1"),
        ({"PARALLEL_READ_CONCURRENCY": "65"}, "to 64"),
        ({"PARALLEL_READ_BYTES": str(16 * MiB - 1)}, "twice PARALLEL_READ_PART_BYTES"),
        (
            {"PARALLEL_READ_PART_BYTES": str(40 * MiB)},  # above half the default threshold
            "twice PARALLEL_READ_PART_BYTES",
        ),
    ],
)
def test_bad_values_are_configuration_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, False), (64 * MiB - 1, False), (64 * MiB, True), (10 * 1024 * MiB, True)],
)
def test_objects_from_the_threshold_on_are_read_in_parallel(size: int, expected: bool) -> None:
    assert ParallelRead().applies(size) is expected


def test_a_concurrency_of_one_turns_it_off() -> None:
    assert not ParallelRead(concurrency=1).applies(10 * 1024 * MiB)


def test_a_concurrency_of_one_is_a_valid_setting_that_turns_it_off() -> None:
    settings = Settings.from_env({"PARALLEL_READ_CONCURRENCY": "1"})
    assert settings.parallel_read.concurrency == 1
    assert not settings.parallel_read.applies(10 * 1024 * MiB)


def test_the_largest_concurrency_is_accepted() -> None:
    settings = Settings.from_env({"PARALLEL_READ_CONCURRENCY": "64"})
    assert settings.parallel_read.concurrency == 64
