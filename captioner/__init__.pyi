"""What ``import captioner`` offers; read by type checkers, and by ``lazy_loader`` to load each name on first use."""

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
from .plugins import load_plugins
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
    get_plugins,
    list_decoders,
    list_encoders,
    list_postprocessors,
)
from .results import Candidate, CaptionResult
from .vocab import Vocabulary, tokenize

__version__: str
