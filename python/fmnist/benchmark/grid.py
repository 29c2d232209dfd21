"""The seed's grid (``grid.json``), expanded as its runner expands it and expressed for today's
scikit-learn: every renamed parameter or value mapped, every default that changed since 0.19 and
moves the results given explicitly, every combination that cannot run recorded with its reason."""

from __future__ import annotations

import ast
import functools
import importlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRID = Path(__file__).with_name("grid.json")


@dataclass(frozen=True)
class Configuration:
    """One (classifier, parameters) of the seed's grid."""

    classifier: str  #: the seed's name, e.g. "SGDClassifier"
    parameter: dict[str, Any]  #: the parameters as the seed's grid gives them (its results' key)
    estimator: str  #: what runs it today, e.g. "sklearn.linear_model.SGDClassifier"
    kwargs: dict[str, Any] = field(default_factory=dict)  #: today's keyword arguments
    wrap: str = ""  #: a meta-estimator around it (e.g. OneVsRestClassifier), or ""
    unsupported: str = ""  #: why today's scikit-learn cannot run it ("" when it can)

    def build(self) -> Any:
        """A new, unfitted estimator for this configuration (ValueError if unsupported)."""
        if self.unsupported:
            raise ValueError(f"{self.classifier} {self.parameter}: {self.unsupported}")
        model = _import(self.estimator)(**self.kwargs)
        return _import(self.wrap)(model) if self.wrap else model


def _import(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _expand(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed's expansion (``JobManager._parse_tasks``): the product of every parameter list of
    the classifier's groups, in order; strings that look like tuples read as tuples."""
    names = [name for group in spec["grid"] for name in group]
    values = [values for group in spec["grid"] for values in group.values()]
    return [dict(zip(names, combination)) for combination in itertools.product(*values)]


def _today(name: str, spec: dict[str, Any], seed: dict[str, Any]) -> Configuration:
    kwargs = dict(spec.get("fixed", {}))
    wrap = ""
    for key, value in seed.items():
        by_value = spec.get("by_value", {}).get(key)
        if by_value is not None:  # a parameter that is gone: its values choose a form instead
            form = by_value[value]
            kwargs.update(form.get("fixed", {}))
            wrap = form.get("wrap", wrap)
            continue
        if key in spec.get("tuples", ()):
            value = ast.literal_eval(value)
        value = spec.get("values", {}).get(key, {}).get(value, value) if isinstance(value, str) else value
        kwargs[spec.get("renamed", {}).get(key, key)] = value
    reason = next(
        (u["reason"] for u in spec.get("unsupported", ()) if all(seed.get(k) == v for k, v in u["when"].items())), ""
    )
    return Configuration(name, dict(seed), spec["estimator"], kwargs, wrap, reason)


def classifiers() -> list[str]:
    """The seed's 14 classifiers, in its order."""
    return list(json.loads(GRID.read_text())["classifiers"])


def configurations(classifiers: list[str] | None = None) -> list[Configuration]:
    """Every configuration of the seed's grid (of ``classifiers`` only, when given), in the seed's
    order: 143 in all."""
    grid = json.loads(GRID.read_text())["classifiers"]
    unknown = sorted(set(classifiers or ()) - set(grid))
    if unknown:
        raise ValueError(f"unknown classifier(s) {unknown}: the seed's grid has {', '.join(grid)}")
    return [
        _today(name, spec, seed)
        for name, spec in grid.items()
        if classifiers is None or name in classifiers
        for seed in _expand(spec)
    ]


PUBLISHED = Path(__file__).with_name("published.json")


def _comparable(value: Any) -> Any:
    """A seed or paper value in one form: "(100,10,)", "[100, 10]" and (100, 10) alike; 1 and 1.0 alike."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(v) for v in value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _published_key(classifier: str, parameter: dict[str, Any]) -> tuple[Any, ...]:
    return (classifier, tuple(sorted((k, _comparable(v)) for k, v in parameter.items())))


@functools.lru_cache(maxsize=1)
def published() -> dict[tuple[Any, ...], dict[str, float]]:
    """The published test accuracies (the Fashion-MNIST paper's Table 3, scikit-learn 0.19) by
    ``published_key(classifier, parameter)``: {"fashion-mnist": ..., "mnist": ...}."""
    table = json.loads(PUBLISHED.read_text())
    datasets = table["columns"][2:]
    out = {}
    for classifier, parameter, *scores in table["rows"]:
        pairs = dict(p.split("=", 1) for p in _split_parameters(parameter))
        out[_published_key(classifier, pairs)] = dict(zip(datasets, scores))
    return out


def published_for(classifier: str, parameter: dict[str, Any]) -> dict[str, float]:
    """The published figures for one configuration of the grid ({} when the paper has none)."""
    return published().get(_published_key(classifier, parameter), {})


def _split_parameters(text: str) -> list[str]:
    """ "a=1 b=[0.1, 0.2]" -> ["a=1", "b=[0.1, 0.2]"]: spaces inside brackets do not split."""
    parts: list[str] = []
    depth = 0
    for word in text.split(" "):
        if depth and parts:
            parts[-1] += " " + word
        else:
            parts.append(word)
        depth += word.count("[") + word.count("(") - word.count("]") - word.count(")")
    return parts
