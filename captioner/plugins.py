"""Plugin discovery: a pluggy manager fed lazily from the ``captioner`` entry points.

``CAPTIONER_PLUGINS=a,b`` loads only the named entry points (an empty value loads
none); ``CAPTIONER_BLOCK_PLUGINS=a,b`` skips the named ones.
``CAPTIONER_PLUGINS_DIR=folder`` (several joined by ``os.pathsep``; ``captioner
--plugins-dir folder``, repeatable) also loads each ``*.py`` file there as a plugin named
after the file, without packaging it. A plugin that fails to import is recorded in
:data:`plugin_errors` and skipped; everything else keeps working.
Warnings (one line each, on stderr through :mod:`logging`) go to :data:`plugin_warnings`:
a hook that is not one of captioner's (a misspelt name), a plugins-dir file that an
installed plugin's name shadows, a name another plugin keeps.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import describe_exception, log_traceback, nearest

ENTRY_POINT_GROUP = "captioner"
BUILTIN_PACKAGE = "captioner_plugins"  # the package the built-in plugins ship in
PLUGINS_DIR_VARIABLE = "CAPTIONER_PLUGINS_DIR"
HOOK_NAMES = tuple(name for name in vars(hookspecs) if name.startswith("register_"))

log = logging.getLogger(__name__)

pm = pluggy.PluginManager("captioner")
pm.add_hookspecs(hookspecs)

plugin_errors: dict[str, str] = {}
"""Plugin name -> one-line error, for plugins that failed to import or register."""

plugin_warnings: dict[str, list[str]] = {}
"""Plugin name -> one-line warnings, e.g. a name it registers that another plugin keeps."""

plugin_files: dict[str, Path] = {}
"""Plugin name -> the file it was loaded from, for plugins-dir plugins (loaded or not)."""

_loading_warnings: dict[str, list[str]] = {}  # found while loading; kept when the registries collect again
_loaded = False
_listeners: list[Any] = []


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def plugins_dirs() -> list[Path]:
    """The folders ``CAPTIONER_PLUGINS_DIR`` names (several joined by ``os.pathsep``)."""
    return [Path(part) for part in os.environ.get(PLUGINS_DIR_VARIABLE, "").split(os.pathsep) if part]


def warn(message: str) -> None:
    """One clean line on stderr (through logging, so applications can route it), no Python source line."""
    log.warning("captioner: warning: %s", message)


def record_plugin_error(plugin: str, message: str, warning: str | None = None,
                        error: BaseException | None = None) -> None:
    """Remember an error for ``plugin`` and warn once about it: ``warning`` says what the error
    costs (default: the plugin is not loaded); ``error``'s traceback follows under ``CAPTIONER_DEBUG``."""
    if error is not None:
        log_traceback(error)
    if plugin_errors.get(plugin) == message:
        return
    plugin_errors[plugin] = message
    warn(warning or f"plugin {plugin!r} is not loaded: {message}")


def record_plugin_warning(plugin: str, message: str) -> None:
    """Remember a warning for ``plugin`` (the plugin keeps working) and show it once."""
    notes = plugin_warnings.setdefault(plugin, [])
    if message not in notes:
        notes.append(message)
        warn(f"plugin {plugin!r}: {message}")


def _record_loading_warning(plugin: str, message: str) -> None:
    notes = _loading_warnings.setdefault(plugin, [])
    if message not in notes:
        notes.append(message)
    record_plugin_warning(plugin, message)


def is_builtin(plugin: str) -> bool:
    """Whether ``plugin`` is one of the built-ins shipped with captioner (they keep their names in a clash)."""
    module = pm.get_plugin(plugin)
    return getattr(module, "__name__", "").startswith(BUILTIN_PACKAGE + ".")


def plugin_source(plugin: object) -> str | None:
    """The file a registered plugin object comes from (its module's, for an object)."""
    module = plugin if isinstance(plugin, types.ModuleType) else sys.modules.get(type(plugin).__module__)
    return getattr(module, "__file__", None)


def load_plugins() -> None:
    """Import and register every allowed entry-point plugin, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    allowed = _names_from_env("CAPTIONER_PLUGINS")
    blocked = _names_from_env("CAPTIONER_BLOCK_PLUGINS") or set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = entry_point.name
        if (allowed is not None and name not in allowed) or name in blocked:
            continue
        if pm.has_plugin(name):
            continue
        try:
            _register(entry_point.load(), name)
        except Exception as error:  # a broken plugin must not take the others down
            record_plugin_error(name, describe_exception(error), error=error)
    for folder in plugins_dirs():
        _load_plugin_files(folder, allowed, blocked)
    _notify()


def _register(plugin: object, name: str | None) -> str | None:
    """``pm.register``, then a warning for each hook it implements that captioner does not have."""
    registered = pm.register(plugin, name=name)
    if registered is not None:
        for caller in pm.get_hookcallers(plugin) or []:
            optional = all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)
            if caller.spec is None and not optional:
                _record_loading_warning(registered, f"implements {caller.name!r}, which is not a captioner "
                                                    f"hook{nearest(caller.name, HOOK_NAMES)}, so it is never called")
    return registered


def _load_plugin_files(folder: Path, allowed: set[str] | None, blocked: set[str]) -> None:
    """Register each ``*.py`` module of ``folder`` as a plugin named after the file (datasette's --plugins-dir)."""
    if not folder.is_dir():
        record_plugin_error(str(folder), f"{PLUGINS_DIR_VARIABLE}: not a folder")
        return
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        if (allowed is not None and name not in allowed) or name in blocked:
            continue
        if pm.has_plugin(name):
            holder = plugin_files.get(name)
            owner = str(holder) if holder else "an installed plugin"
            _record_loading_warning(name, f"{path} is not loaded: {owner} already has the name {name!r} "
                                          "(rename the file)")
            continue
        plugin_files[name] = path
        try:
            spec = importlib.util.spec_from_file_location(f"captioner_plugins_dir.{name}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _register(module, name)
        except Exception as error:
            record_plugin_error(name, f"{path}: {describe_exception(error)}", error=error)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an in-process plugin object (module or instance); returns its name."""
    load_plugins()
    registered = _register(plugin, name)
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is already registered or blocked")
    _notify()
    return registered


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered earlier (and forget any error or warning it caused)."""
    pm.unregister(name=name)
    plugin_errors.pop(name, None)
    _loading_warnings.pop(name, None)
    _notify()


def on_plugins_changed(listener: Any) -> None:
    """Call ``listener()`` whenever the set of registered plugins changes."""
    _listeners.append(listener)


def _notify() -> None:
    plugin_warnings.clear()  # the registries find theirs again when they next collect
    plugin_warnings.update({plugin: list(notes) for plugin, notes in _loading_warnings.items()})
    for listener in _listeners:
        listener()
