"""PCA to RGB for hyperspectral cubes: the first three principal components as one RGB pyramid.

Principal components weigh channels negatively, which the additive render model cannot do, so
the worker renders this view once at conversion. The components come from a small sample
(standardised native values); the full-resolution image is the same projection, streamed.
"""

import numpy as np
import pyvips

SAMPLE_SIDE = 512  # the sample's longest side in pixels


def pca_weights(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 3) weights of the first three components of standardised (M, N) samples, and the
    1st and 99th percentiles of each component (its display window)."""
    count = sample.shape[1]
    cov = np.cov(sample, rowvar=False).reshape(count, count)
    _, vectors = np.linalg.eigh(cov)
    weights = np.zeros((count, 3))
    top = vectors[:, ::-1][:, :3]
    weights[:, : top.shape[1]] = top
    # An eigenvector's sign is arbitrary: make each component grow with the overall signal.
    signs = np.sign(weights.sum(axis=0))
    weights *= np.where(signs == 0, 1.0, signs)
    projected = sample @ weights
    return weights, np.percentile(projected, 1, axis=0), np.percentile(projected, 99, axis=0)


def pca_image(codes: pyvips.Image, luts: list[list[float]]) -> pyvips.Image:
    """The 8-bit sRGB image of the first three components of all channels of ``codes``."""
    count = codes.bands
    scale = min(1.0, SAMPLE_SIDE / max(codes.width, codes.height))
    small = np.asarray(codes.resize(scale, kernel="nearest").numpy()).reshape(-1, count)
    tables = [np.asarray(lut, dtype=np.float64) for lut in luts]
    native = np.stack([tables[i][small[:, i]] for i in range(count)], axis=1)
    mean, std = native.mean(axis=0), native.std(axis=0)
    std[std == 0] = 1.0
    weights, low, high = pca_weights((native - mean) / std)
    standardised = [
        codes.extract_band(i).maplut(
            pyvips.Image.new_from_array(((tables[i] - mean[i]) / std[i]).reshape(1, 256))
        )
        for i in range(count)
    ]
    joined = standardised[0].bandjoin(standardised[1:]) if count > 1 else standardised[0]
    components = joined.recomb(pyvips.Image.new_from_array(weights.T.tolist()))
    span = np.where(high > low, high - low, 1.0)
    scaled = components.linear((255 / span).tolist(), (-low * 255 / span + 0.5).tolist())
    return scaled.floor().cast("uchar").copy(interpretation="srgb")
