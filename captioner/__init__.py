"""captioner: image captioning with CNN encoders, recurrent decoders and pluggy plugins.

The public names are listed once, in ``__init__.pyi``; each loads its module on first
use, so ``import captioner`` (and ``captioner --help``) does not import torch until
something needs it.
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
