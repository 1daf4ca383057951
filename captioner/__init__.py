"""captioner: image captioning with CNN encoders, recurrent decoders and pluggy plugins."""

from .captioner import Captioner, CaptionModel
from .decoder import Decoder, DecoderStep, StepDecoder
from .decoding import DecodingOptions, Hypothesis
from .encoder import Encoder, EncoderConfig, EncoderOutput, FeatureMapEncoder
from .errors import (
    CaptionerError,
    ImageError,
    ModelLoadError,
    PluginError,
    PostProcessError,
    UnknownNameError,
    WeightsUnavailableError,
)
from .hookspecs import hookimpl
from .objects import RecognizedObject
from .plugins import get_plugins, load_plugins
from .postprocessing import (
    PostProcessingChain,
    PostProcessor,
    PostProcessorInfo,
    Rewrite,
    create_postprocessor,
    describe_postprocessors,
    list_postprocessor_specs,
)
from .registry import (
    create_decoder,
    create_encoder,
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
    "PostProcessError",
    "PostProcessingChain",
    "PostProcessor",
    "PostProcessorInfo",
    "RecognizedObject",
    "Rewrite",
    "StepDecoder",
    "UnknownNameError",
    "Vocabulary",
    "WeightsUnavailableError",
    "create_decoder",
    "create_encoder",
    "create_postprocessor",
    "describe_postprocessors",
    "get_encoder_config",
    "get_plugins",
    "hookimpl",
    "list_decoders",
    "list_encoders",
    "list_postprocessor_specs",
    "list_postprocessors",
    "load_plugins",
    "tokenize",
]
