"""A measured proposal for a faster ``process_image`` fast path (input for transforms/image.py).

``proposed_process_image`` keeps the project's verdicts and geometry (``open_image`` reads the header:
format sniffing, pixel limit, mode, EXIF orientation; ``crop_box`` gives the box; the same < 2x
``cv2.resize`` INTER_LINEAR step on the crop box rounded to whole pixels; simplejpeg 4:2:0 encode) and
changes, for RGB/greyscale JPEGs:
1. decode with simplejpeg (libjpeg-turbo, power-of-two DCT scaling through min_height/min_width,
   ``strict=True`` so truncated data still fails) instead of Pillow ``draft()`` + ``load()``;
   EXIF orientation is applied to the decoded array with a numpy view;
2. optionally (``stored_histogram=False``) the 768-bin histogram from the pre-encode crop
   (``cv2.calcHist``) instead of decoding the stored JPEG again (mean/std then describe the pixels
   before JPEG; ``compare`` reports the difference).
Every other input (CMYK/YCCK, PNG, other resamplers, pass-through) goes to ``transforms.image``.
"""
from __future__ import annotations

import math
import statistics

import cv2
import numpy as np
import simplejpeg

from benchmarks import imageops as ops
from benchmarks.micro import time_per_item

# EXIF orientation -> numpy view that makes the stored (H, W, C) array upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _histogram(rgb: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for c in range(3) for v in cv2.calcHist([rgb], [c], None, [256], [0, 256]).ravel())


def proposed_process_image(data: bytes, spec, stored_histogram: bool = True, decoder: str = 'simplejpeg'):
    """Same contract as ``transforms.image.process_image``; faster for RGB/greyscale JPEGs.

    ``decoder``: 'simplejpeg' (strict: truncated data raises) or 'cv2' (IMREAD_REDUCED_COLOR_s,
    EXIF ignored here and applied below; OpenCV 5 returns None for truncated data).
    """
    from transforms import image as image_lib
    image = image_lib.open_image(data, spec.max_image_pixels)
    side = spec.resize_shorter_side
    if not (spec.fast and image.format == 'JPEG' and image.mode in ('RGB', 'L') and side > 0
            and spec.resample == 'bilinear'):
        return image_lib.process_image(data, spec)
    orientation = image.getexif().get(ops.EXIF_ORIENTATION_TAG, 1)
    orientation = orientation if orientation in _UPRIGHT else 1
    width, height = image.size
    s = ops.dct_scale(width, height, side)
    try:
        if decoder == 'cv2':
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), ops._REDUCED[s] | cv2.IMREAD_IGNORE_ORIENTATION)
            if arr is None:
                raise ValueError('cv2.imdecode returned nothing')
        else:
            arr = simplejpeg.decode_jpeg(data, 'RGB', min_height=math.ceil(height / s),
                                         min_width=math.ceil(width / s), strict=True)
    except ValueError as e:
        raise image_lib.ImageRejected(f'truncated or corrupt JPEG data (ValueError: {e})') from None
    arr = _UPRIGHT[orientation](arr)
    up_w, up_h = (height, width) if orientation >= 5 else (width, height)
    box, size = image_lib.crop_box(up_w, up_h, spec)
    fx, fy = arr.shape[1] / up_w, arr.shape[0] / up_h
    scaled = (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)
    if max((scaled[2] - scaled[0]) / size[0], (scaled[3] - scaled[1]) / size[1]) >= 2.0:
        return image_lib.process_image(data, spec)  # the < 2x bilinear step does not apply
    x0, y0, x1, y1 = (int(round(v)) for v in scaled)
    out = cv2.resize(arr[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    if decoder == 'cv2':
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    encoded = simplejpeg.encode_jpeg(out, spec.jpeg_quality, 'RGB', '420')
    histogram = _histogram(simplejpeg.decode_jpeg(encoded) if stored_histogram else out)
    crop = (box[0] / up_w, box[1] / up_h, box[2] / up_w, box[3] / up_h)
    return image_lib.ProcessedImage(encoded, size[1], size[0], histogram, 'JPEG', False, orientation, crop)


def _mean_std(histogram) -> np.ndarray:
    h = np.asarray(histogram, np.float64).reshape(3, 256)
    v = np.arange(256.0)
    mean = (h * v).sum(1) / h.sum(1)
    return np.concatenate([mean, np.sqrt((h * v * v).sum(1) / h.sum(1) - mean ** 2)])


def compare(blobs: list[bytes], repeats: int = 3, psnr_images: int = 40) -> dict:
    """Current vs proposed: CPU µs/image, PSNR (stored JPEG decoded, vs the Lanczos reference of the
    same box), output bytes, and the dataset mean/std from each path's histograms."""
    from PIL import Image
    import io
    from transforms import image as image_lib
    cv2.setNumThreads(1)
    spec = image_lib.ImageSpec()
    result = {}
    paths = (('current transforms.image.process_image', image_lib.process_image),
             ('proposed: simplejpeg decode', proposed_process_image),
             ('proposed + histogram before JPEG', lambda d, sp: proposed_process_image(d, sp, False)),
             ('proposed, cv2 IMREAD_REDUCED decode + histogram before JPEG',
              lambda d, sp: proposed_process_image(d, sp, False, 'cv2')))
    for name, fn in paths:
        outs = [fn(d, spec) for d in blobs]
        mses = []
        for d, o in zip(blobs[:psnr_images], outs):
            w, h = ops.header(d)[2:4]
            box, size = image_lib.crop_box(w, h, spec)
            ref = ops.reference_crop(d, ops.Geometry(w, h, box, size[0]))
            got = np.asarray(Image.open(io.BytesIO(o.encoded)).convert('RGB'), np.float64)
            mses.append(float(np.mean((got - ref) ** 2)))
        total = np.sum([np.asarray(o.histogram, np.int64) for o in outs], axis=0)
        result[name] = {'us': time_per_item(lambda d: fn(d, spec), blobs, repeats),
                        'psnr_db_stored': ops.psnr(statistics.fmean(mses)),
                        'bytes': statistics.fmean(len(o.encoded) for o in outs),
                        'mean_std_rgb': [round(float(x), 3) for x in _mean_std(total)]}
    return result
