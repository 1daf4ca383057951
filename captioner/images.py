"""Reading images from every kind of input, and preprocessing them for an encoder."""

from __future__ import annotations

import io
import os
import re
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps, UnidentifiedImageError

from .encoder import EncoderConfig
from .errors import ImageError, ImageTooLargeError, one_line

ImageInput = str | PathLike | bytes | bytearray | Image.Image | np.ndarray | torch.Tensor

DEFAULT_MAX_PIXELS = 100_000_000
PIXEL_LIMIT_HINT = " (set CAPTIONER_MAX_PIXELS to change it)"  # for operators; web pages leave it out
# Sizes are checked by check_pixel_limit (with a clearer message); Pillow's own warning would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def max_pixels() -> int:
    """The most pixels an image file may have (``CAPTIONER_MAX_PIXELS``, default 100 megapixels)."""
    raw = os.environ.get("CAPTIONER_MAX_PIXELS", "")
    return int(raw) if raw.strip().isdigit() and int(raw) > 0 else DEFAULT_MAX_PIXELS


def too_many_pixels(name: str, pixels: int, size: str = "") -> ImageTooLargeError:
    return ImageTooLargeError(f"{name}: {size}{' is ' if size else ''}{pixels / 1e6:.0f} megapixels, above the limit "
                              f"of {max_pixels() / 1e6:g}{PIXEL_LIMIT_HINT}")


def check_pixel_limit(size: tuple[int, int], name: str) -> None:
    """Refuse an image from its header, before any pixel is decoded (decompression bombs).

    Pillow's own guard (``PIL.Image.MAX_IMAGE_PIXELS``, refusing above twice its
    value) stays in force too.
    """
    width, height = size
    if width * height > max_pixels():
        raise too_many_pixels(name, width * height, f"{width}x{height}")
    if width < 1 or height < 1:
        raise ImageError(f"{name}: image has zero width or height")


IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".heic", ".avif"}
)


def describe_input(source: Any, index: int) -> str:
    """A short name for an input, used in results and error messages."""
    if isinstance(source, (str, PathLike)):
        return str(source)
    return f"<{type(source).__name__} #{index}>"


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float images as 8-bit grayscale, keeping their range."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        array = array * 255 if array.size and np.nanmax(array) <= 1.0 else array
    elif image.mode.startswith("I;16") or (array.size and array.max() > 255):
        array = array / 257  # 0..65535 -> 0..255
    return Image.fromarray(np.nan_to_num(np.clip(array, 0, 255)).astype(np.uint8), "L")


def _from_pil(image: Image.Image, name: str) -> torch.Tensor:
    check_pixel_limit(image.size, name)
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit(image)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
    return TF.pil_to_tensor(image)


def _from_array(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"array of shape {array.shape} is not HxW, HxWx1, HxWx3 or HxWx4")
    return _channels_first_to_rgb8(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))


def _channels_first_to_rgb8(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(f"tensor of shape {tuple(tensor.shape)} is not HxW or CxHxW with 1, 3 or 4 channels")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ValueError("image has zero width or height")
    if tensor.dtype != torch.uint8:
        if tensor.is_floating_point():
            tensor = (tensor.float().clamp(0, 1) * 255).round()
        tensor = tensor.clamp(0, 255).to(torch.uint8)
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor[:3].contiguous()


def load_image(source: ImageInput, name: str | None = None) -> torch.Tensor:
    """Read one image as an RGB ``uint8`` tensor ``(3, H, W)``.

    Paths, bytes and PIL images go through Pillow (EXIF orientation applied, alpha
    composited on white, first frame of animations). Arrays are HxW[xC] and tensors
    [C]xHxW, ``uint8`` or float in [0, 1]. Raises :class:`ImageError` naming the input.
    """
    name = name or describe_input(source, 0)
    try:
        if isinstance(source, torch.Tensor):
            return _channels_first_to_rgb8(source.detach().cpu())
        if isinstance(source, np.ndarray):
            return _from_array(source)
        if isinstance(source, Image.Image):
            return _from_pil(source, name)
        if isinstance(source, (bytes, bytearray)):
            with Image.open(io.BytesIO(source)) as image:
                return _from_pil(image, name)
        if isinstance(source, (str, PathLike)):
            with Image.open(Path(source)) as image:
                return _from_pil(image, name)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as error:  # Pillow refused it in open(), before our check
        count = re.search(r"\((\d+) pixels\)", str(error))
        raise too_many_pixels(name, int(count.group(1)) if count else 2 * (Image.MAX_IMAGE_PIXELS or 0)) from None
    except (OSError, ValueError, SyntaxError) as error:
        message = one_line(error) or type(error).__name__
        raise ImageError(f"{name}: {message}") from None
    except ImageError:
        raise
    except Exception as error:  # anything else a decoder (or a Pillow plugin) raises on a damaged file
        message = one_line(error)
        raise ImageError(f"{name}: not a readable image ({type(error).__name__}{': ' + message if message else ''})") from None
    raise ImageError(f"{name}: unsupported input type {type(source).__name__}")


def center_crop_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """The largest ``(height, width)`` inside ``size`` with the aspect ratio of ``target``."""
    height, width = size
    if width * target[0] > height * target[1]:  # wider than the target
        return height, max(1, round(height * target[1] / target[0]))
    return max(1, round(width * target[0] / target[1])), width


def resize(image: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """An RGB ``uint8`` image ``(3, H, W)`` (or a batch of one size, ``(B, 3, H, W)``) resized
    (and cropped) to the encoder's input, still ``uint8``."""
    height, width = config.input_size
    mode = TF.InterpolationMode.BICUBIC if config.interpolation == "bicubic" else TF.InterpolationMode.BILINEAR
    if config.resize_mode == "center_crop":  # crop to the input's shape first: a 1x100000 strip stays small
        image = TF.center_crop(image, list(center_crop_size((image.shape[-2], image.shape[-1]), (height, width))))
    if tuple(image.shape[-2:]) != (height, width):
        image = TF.resize(image, [height, width], interpolation=mode, antialias=True)
    return image


def normalize(pixels: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """Float pixels in [0, 1], ``(3, H, W)`` or ``(B, 3, H, W)``, normalised with the encoder's mean and std."""
    mean = torch.tensor(config.mean, device=pixels.device).view(3, 1, 1)
    std = torch.tensor(config.std, device=pixels.device).view(3, 1, 1)
    return (pixels - mean) / std


def preprocess(image: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """Resize an RGB ``uint8`` image ``(3, H, W)`` (or a batch of one size) as ``config`` says and normalise it to float.

    For a stack of encoders, each member's input is made from the image as that member's
    config says, and they are returned side by side: ``(3 * members, H, W)``, each
    padded with zeros at the bottom and right to the stack's ``input_size``.
    """
    if config.members:
        height, width = config.input_size
        inputs = [preprocess(image, member) for member in config.members]
        return torch.cat([F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2])) for x in inputs], dim=-3)
    return normalize(resize(image, config).float().div_(255), config)


def preprocess_many(images: list[torch.Tensor], config: EncoderConfig) -> list[torch.Tensor]:
    """:func:`preprocess` for many images, those of one size and device together.

    On a GPU this is a few kernels per size instead of a few per image.
    """
    groups: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault((tuple(image.shape), image.device), []).append(i)
    out: list[torch.Tensor] = [torch.empty(0)] * len(images)
    for members in groups.values():
        pixels = preprocess(torch.stack([images[i] for i in members]), config)
        for i, row in zip(members, pixels):
            out[i] = row
    return out


def load_batch(paths: list[str | PathLike], config: EncoderConfig) -> torch.Tensor:
    """Read and preprocess image files into one ``(B, 3, H, W)`` batch (3 channels per member for a stack);
    raises on the first bad file."""
    return torch.stack([preprocess(load_image(path), config) for path in paths])
