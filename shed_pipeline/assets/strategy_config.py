"""Asset config for strategies, generated from their registries: one Dagster config class per
strategy (its settings' fields, types, defaults and help), and a discriminated union of them.

In run config a choice reads `{"utility": {"probe": {"dims": 8}}}`: the strategy's name, then its
settings (missing ones take their defaults). The launchpad shows each strategy's settings, typed.
Settings use the types Dagster config accepts: int, float, bool, str, list, dict and Optional ones.
"""

import dataclasses
from typing import Any, Literal, Union

import dagster as dg
from pydantic import Field, create_model

from shed_pipeline.core.strategies import Registry, Strategy, setting_help

DISCRIMINATOR = "kind"
_classes: dict[tuple[str, str, bool], type] = {}


def config_class(registry: Registry, strategy: Strategy, discriminated: bool = True) -> type:
    """The Dagster config class of one strategy (made once per process); `discriminated` adds the
    `kind` field a union of them (choice_field) tells its members apart by."""
    key = (registry.kind, strategy.name, discriminated)
    if key not in _classes:
        types = strategy.types()
        fields: dict[str, Any] = {DISCRIMINATOR: (Literal[strategy.name], strategy.name)} if discriminated else {}  # type: ignore[valid-type]
        for f in strategy.fields():
            default = (
                {"default": f.default}
                if f.default is not dataclasses.MISSING
                else {"default_factory": f.default_factory}
            )
            fields[f.name] = (types[f.name], Field(**default, description=setting_help(f) or None))
        name = "".join(
            part.capitalize() for part in f"{strategy.name}_{registry.kind}".replace(" ", "_").split("_")
        ) + ("Config" if discriminated else "Settings")
        _classes[key] = create_model(name, __base__=dg.Config, __doc__=strategy.summary, **fields)
    return _classes[key]


def choice_field(registry: Registry, default: str, description: str, default_settings: dict | None = None):
    """(annotation, pydantic Field) of a config field choosing one of the registry's strategies;
    the default is `default` with `default_settings` (checked: an unknown setting fails here)."""
    registry.configure(default, default_settings)
    classes = tuple(config_class(registry, registry[name]) for name in registry.names)
    annotation = Union[classes] if len(classes) > 1 else classes[0]  # type: ignore[valid-type]
    return annotation, Field(
        default=config_class(registry, registry[default])(**(default_settings or {})),
        discriminator=DISCRIMINATOR,
        description=description,
    )


def chosen(registry: Registry, value: dg.Config):
    """(strategy, settings) of a choice made in config."""
    data = value.model_dump()
    return registry.configure(data.pop(DISCRIMINATOR), data)


def choice_run_config(name: str, settings: dict | None = None) -> dict:
    """A choice as run config: {name: {setting: value}}."""
    return {name: dict(settings or {})}
