"""Models loaded once per process and shared by every request."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

from ..captioner import Captioner
from ..device import describe_device
from ..errors import ModelLoadError, describe_exception
from ..model_catalog import DEFAULT_MODEL, describe_model, describe_models, resolve_model


@dataclass(frozen=True)
class ModelChoice:
    """A model the UI offers: its label in the menu and what to load."""

    label: str
    source: str
    encoder: str
    decoder: str


def find_models(extra: tuple[str, ...] = ()) -> list[ModelChoice]:
    """The given models (names or folders; the first is the default), then every shipped model,
    the shipped default first (so it is the default when no model is given).

    Reads only the configs. A given model that cannot be read raises; a broken
    shipped one is left out.
    """
    choices: dict[str, ModelChoice] = {}
    for name in extra:
        info = describe_model(name, resolve_model(name))
        if info.error:
            raise ModelLoadError(info.error)
        choices.setdefault(name, ModelChoice(name, info.path, info.encoder or "?", info.decoder or "?"))
    for info in sorted(describe_models(), key=lambda info: info.name != DEFAULT_MODEL):
        if info.error is None and info.name not in choices and info.path not in {c.source for c in choices.values()}:
            choices[info.name] = ModelChoice(info.name, info.path, info.encoder or "?", info.decoder or "?")
    return list(choices.values())


class ModelPool:
    """Loads each model on first use, once, on one device, and warms it up (:meth:`Captioner.warm_up`);
    loading one model never blocks users of another."""

    def __init__(self, choices: list[ModelChoice], device: str | None = None) -> None:
        if not choices:
            raise ValueError("no models to serve")
        self.choices = {choice.label: choice for choice in choices}
        self.device = device
        self._loaded: dict[str, Captioner] = {}
        self._locks: dict[str, threading.Lock] = {label: threading.Lock() for label in self.choices}

    @property
    def default(self) -> str:
        return next(iter(self.choices))

    def labels(self) -> list[str]:
        return list(self.choices)

    def get(self, label: str) -> Captioner:
        """The captioner for ``label``, loading it if needed (other models stay available meanwhile)."""
        if label not in self.choices:
            raise ModelLoadError(f"unknown model {label!r}; served models: {', '.join(self.choices)}")
        captioner = self._loaded.get(label)
        if captioner is not None:
            return captioner
        with self._locks[label]:  # only requests for this same model wait
            if label not in self._loaded:
                captioner = Captioner.from_pretrained(self.choices[label].source, device=self.device)
                try:
                    captioner.warm_up()  # its first visitor does not wait for the encoder's compilation
                except Exception as error:  # a blank image is no real photo: serve the model all the same
                    warnings.warn(f"model {label!r} was not warmed up, so its first photo waits longer: "
                                  f"{describe_exception(error)}", stacklevel=2)
                self._loaded[label] = captioner
            return self._loaded[label]

    def status(self, label: str) -> str:
        """One line: which model, encoder, decoder and device are serving."""
        choice = self.choices[label]
        captioner = self._loaded.get(label)
        where = describe_device(captioner.device) if captioner else "not loaded yet"
        return f"Model **{label}** · encoder `{choice.encoder}` · decoder `{choice.decoder}` · device {where}"
