"""Caption datasets: readers for Flickr8k/30k, COCO and Karpathy splits."""

from .readers import CaptionDataset, CaptionedImage, load_dataset, read_coco, read_flickr, read_karpathy

__all__ = ["CaptionedImage", "CaptionDataset", "load_dataset", "read_coco", "read_flickr", "read_karpathy"]
