"""What ``import captioner`` offers; read by type checkers, and by ``lazy_loader`` to load each name on first use."""

from .captioner import (
    Captioner as Captioner,
    CaptionModel as CaptionModel,
)
from .decoder import (
    Decoder as Decoder,
    DecoderStep as DecoderStep,
    StepDecoder as StepDecoder,
)
from .decoding import (
    DecodingOptions as DecodingOptions,
    Hypothesis as Hypothesis,
)
from .encoder import (
    Encoder as Encoder,
    EncoderConfig as EncoderConfig,
    EncoderOutput as EncoderOutput,
    FeatureMapEncoder as FeatureMapEncoder,
)
from .errors import (
    CaptionerError as CaptionerError,
    ImageError as ImageError,
    ModelLoadError as ModelLoadError,
    PluginError as PluginError,
    PostProcessError as PostProcessError,
    UnknownNameError as UnknownNameError,
    WeightsUnavailableError as WeightsUnavailableError,
)
from .hookspecs import (
    hookimpl as hookimpl,
)
from .objects import (
    RecognizedObject as RecognizedObject,
)
from .plugins import (
    load_plugins as load_plugins,
)
from .postprocessing import (
    PostProcessingChain as PostProcessingChain,
    PostProcessorInfo as PostProcessorInfo,
    create_postprocessor as create_postprocessor,
    describe_postprocessors as describe_postprocessors,
    list_postprocessor_specs as list_postprocessor_specs,
)
from .postprocessor import (
    PostProcessor as PostProcessor,
    Rewrite as Rewrite,
)
from .registry import (
    create_decoder as create_decoder,
    create_encoder as create_encoder,
    get_encoder_config as get_encoder_config,
    get_plugins as get_plugins,
    list_decoders as list_decoders,
    list_encoders as list_encoders,
    list_postprocessors as list_postprocessors,
)
from .results import (
    Candidate as Candidate,
    CaptionResult as CaptionResult,
)
from .vocab import (
    Vocabulary as Vocabulary,
    tokenize as tokenize,
)

__version__: str
