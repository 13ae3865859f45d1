"""Strategies by name, each with typed settings: utilities, estimators, selection methods.

A strategy is one module that declares a `Strategy`: its name, a one-line summary, a frozen dataclass
of settings (every field has a default; `field(metadata={"help": ...})` says what it does), and the
function that runs it. A `Registry` lists the strategies of one kind; the asset config (one typed
config class per strategy, generated from its settings), the CLI's choices, the error messages and
the README's tables all read it, so adding a strategy is its module plus one line in its registry.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence


class StrategyError(ValueError):
    """An unknown strategy name or setting; the message lists what exists."""


@dataclass(frozen=True)
class Strategy:
    """One strategy of a registry's kind."""

    name: str
    summary: str  # one line, for the CLI's help and the README
    settings: type  # a frozen dataclass whose fields all have defaults
    run: Callable[..., Any]  # what the strategy does; its signature is the registry kind's contract
    # What it needs besides its settings, checked before any work: e.g. {"utility": ("knn",)} for an
    # estimator that is the closed form of one utility, {"row_values": ("ifd",)} for a method.
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Estimators: at most how many utility calls a run makes, given (players, settings); feeds the
    # progress line's total and time left. None: unknown.
    calls: Callable[[int, Any], int] | None = None
    # Estimators: whether, with these settings, the coalitions a run asks for follow from the seed and
    # the players alone, not from the values returned, so that they can be evaluated ahead of the
    # estimation in shares on several workers (core/valuation/shares.py `evaluate_share`). None: never.
    fixed_coalitions: Callable[[Any], bool] | None = None
    # Row values: each row's value depends on that row's texts alone and is kept in the feature cache,
    # so row-id shards of the pool can be computed apart, on several workers (core/row_values
    # `compute_shard`), and the final pass finds every row cached.
    rows_apart: bool = False

    def fields(self) -> list[dataclasses.Field]:
        return list(dataclasses.fields(self.settings))

    def types(self) -> dict[str, Any]:
        """The settings' field types, resolved (modules use `from __future__ import annotations`)."""
        return typing.get_type_hints(self.settings)

    def configure(self, values: Mapping[str, Any] | None = None, kind: str = "strategy"):
        """Settings from `values` (missing keys take their defaults); an unknown key fails naming the
        settings that exist."""
        values = dict(values or {})
        known = {f.name for f in self.fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise StrategyError(f"{kind} {self.name} has no setting {unknown[0]!r}; its settings: {listed}")
        return self.settings(**values)

    def defaults(self) -> dict[str, Any]:
        return dataclasses.asdict(self.settings())


class Registry(Mapping[str, Strategy]):
    """The strategies of one kind ("utility", "estimator", "method"), in the order they are listed."""

    def __init__(self, kind: str, strategies: Sequence[Strategy]):
        self.kind = kind
        self._by_name: dict[str, Strategy] = {}
        for s in strategies:
            if s.name in self._by_name:
                raise ValueError(f"two {kind}s named {s.name!r}")
            if not dataclasses.is_dataclass(s.settings):
                raise TypeError(f"{kind} {s.name}: settings must be a dataclass")
            missing = [
                f.name
                for f in dataclasses.fields(s.settings)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ]
            if missing:
                raise TypeError(f"{kind} {s.name}: setting {missing[0]!r} has no default")
            self._by_name[s.name] = s

    def __getitem__(self, name: str) -> Strategy:
        try:
            return self._by_name[name]
        except KeyError:
            raise StrategyError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._by_name)}") from None

    def __contains__(self, name: object) -> bool:  # Mapping's would call __getitem__, which raises StrategyError
        return name in self._by_name

    def get(self, name: str, default: Any = None) -> Any:
        return self._by_name.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def configure(self, name: str, values: Mapping[str, Any] | None = None):
        """The named strategy and its settings from `values`."""
        strategy = self[name]
        return strategy, strategy.configure(values, self.kind)

    def check_requirements(self, name: str, **chosen: Sequence[str] | str) -> None:
        """Fail, saying what is needed, when the named strategy's requirements are not met: a chosen
        name (a str) must be one of the required ones (estimator knn_exact: utility knn); available
        things (a collection, e.g. the row values computed) must include every required one."""
        for what, required in self[name].requires.items():
            have = chosen.get(what)
            if have is None:
                continue
            if isinstance(have, str):
                if have not in required:  # name what it needs, and which strategies would fit the choice
                    fits = [s.name for s in self.values() if have in s.requires.get(what, (have,))]
                    choose = ", ".join(fits[:-1]) + " or " + fits[-1] if len(fits) > 1 else "".join(fits)
                    raise StrategyError(
                        f"{self.kind} {name} needs {what} {' or '.join(required)}, got {have!r} ({name}: "
                        f"{self[name].summary}); with {what} {have!r} choose {choose}"
                    )
                continue
            if not set(required) <= set(have):
                raise StrategyError(
                    f"{self.kind} {name} needs {what} {' and '.join(required)} (got {', '.join(have) or 'none'})"
                )

    def help_lines(self) -> list[str]:
        """One line per strategy: name, summary, settings with defaults (the CLI's help, the README)."""
        out = []
        for s in self._by_name.values():
            settings = ", ".join(f"{k}={v!r}" for k, v in s.defaults().items())
            out.append(f"{s.name}: {s.summary}" + (f" (settings: {settings})" if settings else ""))
        return out


def declared_strategies(package) -> dict[str, Strategy]:
    """The strategies the modules of `package` declare (a module-level STRATEGY), by name: what a
    registry built from the package should list."""
    import importlib
    import pkgutil

    declared = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if isinstance(getattr(module, "STRATEGY", None), Strategy):
            declared[module.STRATEGY.name] = module.STRATEGY
    return declared


def setting_help(f: dataclasses.Field) -> str:
    return str(f.metadata.get("help", ""))
