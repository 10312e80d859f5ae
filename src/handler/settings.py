"""Settings read from the environment, each with a default (docs/behaviour.md, "Settings").

Settings are read on every invocation rather than at import time: it is cheap, and it means a
changed environment (a test's ``monkeypatch``, ``sam local invoke --env-vars``) always applies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_INPUT_SUFFIX = "market_infos.json"
DEFAULT_RESULT_NAME = "total_price.json"
DEFAULT_MAX_INPUT_BYTES = 1024**3  # 1 GiB


class ConfigurationError(ValueError):
    """A setting has a value the function cannot work with.

    Raised (not answered with an ``invalid`` result) because it is the deployment that is wrong,
    not the input: the event must be retried once the configuration is fixed.
    """


@dataclass(frozen=True)
class Settings:
    """The function's configuration. ``result_bucket`` ``None`` means "the source bucket"."""

    result_bucket: str | None = None
    input_suffix: str = DEFAULT_INPUT_SUFFIX
    result_name: str = DEFAULT_RESULT_NAME
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES

    def __post_init__(self) -> None:
        if not self.input_suffix:
            raise ConfigurationError("INPUT_SUFFIX must not be empty")
        if not self.result_name or "/" in self.result_name:
            raise ConfigurationError("RESULT_NAME must be a non-empty name without '/'")
        # A result that matched the trigger would invoke the function again, forever.
        if self.result_name.endswith(self.input_suffix):
            raise ConfigurationError(
                f"RESULT_NAME {self.result_name!r} ends with INPUT_SUFFIX "
                f"{self.input_suffix!r}: results would trigger the function in a loop"
            )
        if self.max_input_bytes < 0:
            raise ConfigurationError("MAX_INPUT_BYTES must be zero or more")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); unset or empty means the default."""
        env = os.environ if environ is None else environ
        raw_max = env.get("MAX_INPUT_BYTES") or str(DEFAULT_MAX_INPUT_BYTES)
        try:
            max_input_bytes = int(raw_max)
        except ValueError:
            raise ConfigurationError(
                f"MAX_INPUT_BYTES must be a whole number of bytes, got {raw_max!r}"
            ) from None
        return cls(
            result_bucket=env.get("RESULT_BUCKET") or None,
            input_suffix=env.get("INPUT_SUFFIX") or DEFAULT_INPUT_SUFFIX,
            result_name=env.get("RESULT_NAME") or DEFAULT_RESULT_NAME,
            max_input_bytes=max_input_bytes,
        )
