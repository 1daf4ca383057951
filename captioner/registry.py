"""timm-style registries of encoders, decoders and post-processors, filled by plugin hooks; and
what each plugin registered (``get_plugins``, shown by ``captioner plugins``)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CaptionerError, PluginError, UnknownNameError, describe_exception
from .plugins import (
    ENTRY_POINT_GROUP,
    HOOK_NAMES,
    is_builtin,
    load_plugins,
    on_plugins_changed,
    plugin_errors,
    plugin_files,
    plugin_source,
    plugin_warnings,
    pm,
    record_plugin_error,
    record_plugin_warning,
)
from .postprocessor import check_postprocessor_class


@dataclass(frozen=True)
class Entry:
    """One registered component: its name, factory, owning plugin and optional config."""

    name: str
    factory: Callable[..., Any]
    plugin: str
    config: Any = None


class Registry:
    """Components of one kind, collected from one ``register_*`` hook on first use.

    ``check(factory)`` raises ``ValueError`` for a factory that cannot work (a post-processor
    class whose ``effect`` is misspelt), so the mistake shows when the plugin registers it.
    """

    def __init__(self, kind: str, hook_name: str, needs_config: bool = False,
                 check: Callable[[Any], None] | None = None) -> None:
        self.kind = kind
        self.hook_name = hook_name
        self.needs_config = needs_config
        self.check = check
        self._entries: dict[str, Entry] | None = None
        on_plugins_changed(self.invalidate)

    def invalidate(self) -> None:
        """Forget collected entries; the next access asks the hooks again."""
        self._entries = None

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            load_plugins()
            self._entries = self._collect()
        return self._entries

    def _registrar(self, plugin: str, pending: dict[str, Entry]) -> Callable[..., None]:
        """The ``register`` function one plugin's hook is called with; it checks and collects into ``pending``."""

        def register(name: str, factory: Callable[..., Any], config: Any = None) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"{self.kind} names must be non-empty strings, got {name!r}")
            if not callable(factory):
                raise PluginError(f"{self.kind} {name!r}: factory {factory!r} is not callable")
            if self.needs_config and config is None:
                raise PluginError(f"{self.kind} {name!r} was registered without a config")
            if name in pending:
                raise PluginError(f"{self.kind} {name!r} is registered twice")
            if self.check is not None:
                try:
                    self.check(factory)
                except ValueError as error:
                    raise PluginError(f"{self.kind} {name!r}: {error}") from None
            pending[name] = Entry(name, factory, plugin, config)

        return register

    def _collect(self) -> dict[str, Entry]:
        """Ask every plugin's hook; settle names claimed by several plugins (see :func:`keeper`)."""
        claims: dict[str, list[Entry]] = {}
        hook = getattr(pm.hook, self.hook_name)
        # Call each implementation on its own so a failure is pinned on its plugin.
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name
            pending: dict[str, Entry] = {}
            try:
                impl.function(register=self._registrar(plugin, pending))
            except Exception as error:
                message = f"{self.hook_name}: {describe_exception(error)}"
                record_plugin_error(plugin, message, error=error, warning=(
                    f"plugin {plugin!r}: its {self.hook_name} hook failed, so none of its {self.kind}s are "
                    f"registered (its other hooks still are): {describe_exception(error)}"))
                continue
            for entry in pending.values():
                claims.setdefault(entry.name, []).append(entry)
        entries: dict[str, Entry] = {}
        for name, claimants in claims.items():
            entries[name] = kept = keeper(claimants)
            for entry in claimants:
                if entry is not kept:
                    record_plugin_warning(
                        entry.plugin, f"its {self.kind} {name!r} is not used: plugin {kept.plugin!r} registers the "
                        f"same name and keeps it ({CLASH_RULE})"
                    )
        return entries

    def list(self) -> list[str]:
        """Sorted names of every registered component."""
        return sorted(self.entries)

    def get(self, name: str) -> Entry:
        """The entry for ``name``, or an error listing what is installed."""
        try:
            return self.entries[name]
        except KeyError:
            available = ", ".join(self.list()) or "none"
            message = f"unknown {self.kind} {name!r}; installed {self.kind}s: {available}"
            if plugin_errors:
                message += f" (plugins that failed to load: {', '.join(sorted(plugin_errors))})"
            raise UnknownNameError(message) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build ``name`` with ``kwargs``; an unexpected failure names the plugin."""
        entry = self.get(name)
        try:
            component = entry.factory(**kwargs)
        except CaptionerError:
            raise
        except Exception as error:
            raise PluginError(
                f"{self.kind} {name!r} from plugin {entry.plugin!r} failed: {describe_exception(error)}"
            ) from error
        try:
            component.registered_name = name  # lets a model folder record what built it
        except AttributeError:
            pass
        return component


CLASH_RULE = "built-in plugins keep their names; between others, the plugin whose name sorts first"


def keeper(claimants: list[Entry]) -> Entry:
    """The entry that keeps a name several plugins register: a built-in's, else the first plugin's by name.

    Only that name is settled: everything else the other plugins register stays.
    """
    return min(claimants, key=lambda entry: (not is_builtin(entry.plugin), entry.plugin))


encoders = Registry("encoder", "register_encoders", needs_config=True)
decoders = Registry("decoder", "register_decoders")
postprocessors = Registry("post-processor", "register_postprocessors", check=check_postprocessor_class)


def list_encoders() -> list[str]:
    """Names of all registered encoders."""
    return encoders.list()


def get_encoder_config(name: str) -> Any:
    """The frozen :class:`~captioner.encoder.EncoderConfig` of encoder ``name``."""
    return encoders.get(name).config


def create_encoder(name: str, **kwargs: Any) -> Any:
    """Build encoder ``name`` (for example ``pretrained=False`` or ``weights=path``)."""
    return encoders.create(name, **kwargs)


def list_decoders() -> list[str]:
    """Names of all registered decoders."""
    return decoders.list()


def create_decoder(name: str, vocab_size: int, feature_dim: int, **hparams: Any) -> Any:
    """Build decoder ``name`` for a vocabulary and an encoder feature size."""
    return decoders.create(name, vocab_size=vocab_size, feature_dim=feature_dim, **hparams)


def list_postprocessors() -> list[str]:
    """Names of all registered post-processors."""
    return postprocessors.list()


def registered_names_by_plugin() -> dict[str, dict[str, list[str]]]:
    """Plugin name -> {"encoders": [...], ...} for what each plugin registered."""
    result: dict[str, dict[str, list[str]]] = {}
    for key, registry in (("encoders", encoders), ("decoders", decoders), ("postprocessors", postprocessors)):
        for entry in registry.entries.values():
            result.setdefault(entry.plugin, {}).setdefault(key, []).append(entry.name)
    for groups in result.values():
        for names in groups.values():
            names.sort()
    return result


@dataclass
class PluginInfo:
    """What ``captioner plugins`` shows for one plugin."""

    name: str
    version: str | None
    source: str | None = None  # the plugin's file: a plugins-dir file, or the module an entry point names
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _distribution_version(name: str) -> str | None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        if entry_point.dist is not None:
            return entry_point.dist.version
    return None


def get_plugins() -> list[PluginInfo]:
    """Every registered plugin plus every plugin that failed, sorted by name."""
    load_plugins()
    by_plugin = registered_names_by_plugin()
    infos: dict[str, PluginInfo] = {}
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.name in HOOK_NAMES)
        infos[name] = PluginInfo(
            name=name,
            version=_distribution_version(name) or getattr(plugin, "__version__", None),
            source=plugin_source(plugin),
            hooks=hooks,
            registered=by_plugin.get(name, {}),
            warnings=list(plugin_warnings.get(name, [])),
        )
    for name, message in plugin_errors.items():
        file = plugin_files.get(name)
        info = infos.setdefault(name, PluginInfo(name, _distribution_version(name), str(file) if file else None))
        info.error = message
    return [infos[name] for name in sorted(infos)]
