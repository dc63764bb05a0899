"""Registries by name: models, datasets, optimisers, losses, experiments.

Configs, the CLI and the tests look things up here by the name the course uses, e.g.
`MODELS.get('mlp')`. `check_kwargs` is how every builder checks its config section against what it accepts
(config validation flows one way: config -> builders -> registry). A registry fills itself on first use by importing the package that registers into it,
so `import jaxdl` stays cheap and nothing has to be imported in a special order.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from typing import Any, Callable, Generic, Iterator, TypeVar

from jaxdl.errors import UserError

T = TypeVar('T')


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
  name: str
  obj: T
  meta: dict[str, Any]


class Registry(Generic[T]):
  """A name -> object map with metadata, filled by `@REGISTRY.register(name, **meta)`."""

  def __init__(self, kind: str, populate: tuple[str, ...] = (), plural: str = ''):
    self.kind = kind
    self.plural = plural or kind + 's'
    self._populate = populate
    self._populated = False
    self._entries: dict[str, Entry[T]] = {}

  def _ensure(self) -> None:
    if not self._populated:
      self._populated = True
      for module in self._populate:
        importlib.import_module(module)

  def register(self, name: str, **meta: Any) -> Callable[[T], T]:
    def decorator(obj: T) -> T:
      if name in self._entries and self._entries[name].obj is not obj:
        raise ValueError(f'{self.kind} {name!r} is registered twice')
      self._entries[name] = Entry(name, obj, dict(meta))
      return obj
    return decorator

  def entry(self, name: str) -> Entry[T]:
    self._ensure()
    if name not in self._entries:
      close = difflib.get_close_matches(str(name), self._entries, n=1)
      hint = f"did you mean '{close[0]}'?" if close else f'see `jaxdl list --{self.plural}`'
      raise UserError(f'unknown {self.kind} {name!r}', 'one of: ' + ', '.join(sorted(self._entries)), hint)
    return self._entries[name]

  def get(self, name: str) -> T:
    return self.entry(name).obj

  def meta(self, name: str) -> dict[str, Any]:
    return self.entry(name).meta

  def names(self) -> list[str]:
    self._ensure()
    return sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    self._ensure()
    return name in self._entries

  def __iter__(self) -> Iterator[Entry[T]]:
    self._ensure()
    return iter([self._entries[k] for k in sorted(self._entries)])

  def __len__(self) -> int:
    self._ensure()
    return len(self._entries)


def check_kwargs(section: str, given: dict[str, Any], fn_or_fields, what: str) -> None:
  """Checks a section's keys (minus `name`) against the parameters a builder accepts."""
  if isinstance(fn_or_fields, (set, frozenset, list, tuple)):
    accepted = set(fn_or_fields)
  else:
    params = inspect.signature(fn_or_fields).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
      return
    accepted = {k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
  for key in given:
    if key not in accepted:
      raise UserError(f'unknown key config.{section}.{key} for {what}',
                      'one of: ' + (', '.join(sorted(accepted)) or '(none)'),
                      f'remove it or fix its spelling')


MODELS: Registry = Registry('model', ('jaxdl.models',))
DATASETS: Registry = Registry('dataset', ('jaxdl.data',))
OPTIMIZERS: Registry = Registry('optimizer', ('jaxdl.optim',))
LOSSES: Registry = Registry('loss', ('jaxdl.losses',), plural='losses')
