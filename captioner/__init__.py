"""captioner: image captioning with CNN encoders, recurrent decoders and pluggy plugins."""

from .captioner import Captioner, CaptionModel
from .decoder import Decoder, DecoderStep
from .decoding import DecodingOptions, Hypothesis
from .encoder import Encoder, EncoderConfig, EncoderOutput, FeatureMapEncoder
from .errors import CaptionerError, ImageError, ModelLoadError, PluginError, UnknownNameError, WeightsUnavailableError
from .hookspecs import hookimpl
from .plugins import get_plugins, load_plugins
from .registry import (
    create_decoder,
    create_encoder,
    create_postprocessor,
    get_encoder_config,
    list_decoders,
    list_encoders,
    list_postprocessors,
)
from .results import Candidate, CaptionResult
from .vocab import Vocabulary, tokenize

__version__ = "0.1.0"

__all__ = [
    "Captioner",
    "CaptionModel",
    "CaptionResult",
    "Candidate",
    "CaptionerError",
    "Decoder",
    "DecoderStep",
    "DecodingOptions",
    "Encoder",
    "EncoderConfig",
    "EncoderOutput",
    "FeatureMapEncoder",
    "Hypothesis",
    "ImageError",
    "ModelLoadError",
    "PluginError",
    "UnknownNameError",
    "Vocabulary",
    "WeightsUnavailableError",
    "create_decoder",
    "create_encoder",
    "create_postprocessor",
    "get_encoder_config",
    "get_plugins",
    "hookimpl",
    "list_decoders",
    "list_encoders",
    "list_postprocessors",
    "load_plugins",
    "tokenize",
]
