"""Facts this process's plugin model states about itself (model id, weights, preprocessing).

Our lmms-eval model classes report here when they load; the task report copies them into the results
(`model_info`), so a submission says which weights and preprocessing produced it. lmms-eval's own model
classes report nothing: their arguments are in the results' `config` already.
"""

from __future__ import annotations

_FACTS: dict[str, str] = {}


def record_model_facts(**facts: object) -> None:
    _FACTS.update({key: str(value) for key, value in facts.items()})


def describe_models() -> dict[str, str]:
    return dict(_FACTS)
