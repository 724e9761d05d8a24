"""MATLAB v7.3 files and plain HDF5 (h5py); the image is decoded into memory.

MATLAB writes arrays column-major, so a MATLAB H x W x C array appears in HDF5 as C x W x H.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import ChannelSource, ReadOptions, check_memory, default_channels
from plexzoom.core.readers.matlab import (
    NUMERIC_CLASSES,
    Variable,
    check_variable,
    choose_image,
    find_wavelengths,
    matlab_source,
)
from plexzoom.core.readers.numpy_array import array_source, check_array_header, hwc_view

_H5_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError)
NUMERIC_CLASSES_BY_DTYPE = {
    "float64": "double",
    "float32": "single",
    "bool": "logical",
    **{name: name for name in NUMERIC_CLASSES if name.startswith(("int", "uint"))},
}


def open_hdf5(path: Path, options: ReadOptions, matlab: bool) -> ChannelSource:
    """Open a MATLAB v7.3 file (``matlab``) or a plain HDF5 file holding an image array."""
    try:
        with h5py.File(path, "r") as file:
            _refuse_external(file)
            variables = _variables(file, matlab)
            what = "MATLAB file" if matlab else "HDF5 file"
            image = choose_image(variables, options, what)
            dataset = file[image.name]
            _check_dataset(dataset, image, matlab, options)
            array = np.asarray(dataset[()])
            wavelengths = find_wavelengths(variables, image)
            vector = np.asarray(file[wavelengths.name][()]) if wavelengths else None
    except _H5_ERRORS as exc:
        raise CorruptImage(
            "The MATLAB/HDF5 file cannot be read; it may be damaged. Save it again and upload it."
        ) from exc
    if matlab:
        return matlab_source(array.transpose(), vector, image, options)
    hwc, layout = hwc_view(array, options.array_layout)
    notes: dict[str, Any] = {"variable": image.name, "layout": layout}
    return array_source(hwc, default_channels(hwc.shape[2]), options, notes)


def _check_dataset(
    dataset: h5py.Dataset, image: Variable, matlab: bool, options: ReadOptions
) -> None:
    """Check the image's declared size against the limits before its data is read."""
    if matlab:
        check_variable(image, options)
        return
    check_array_header(dataset.shape, dataset.dtype, options)
    check_memory(dataset.size * dataset.dtype.itemsize, options, "This image")


def _refuse_external(file: h5py.File) -> None:
    """Refuse external links, external raw storage and virtual datasets anywhere in the file."""
    found: list[str] = []

    def visit(name: str, link: Any) -> None:
        if isinstance(link, h5py.ExternalLink):
            found.append(f"{name} (link to {link.filename})")
            return
        if isinstance(link, h5py.HardLink):
            item = file.get(name)
            if isinstance(item, h5py.Dataset) and (item.is_virtual or item.external):
                found.append(f"{name} (data stored in other files)")

    file.visititems_links(visit)
    if found:
        raise UnsupportedFormat(
            f"This file points to data in other files ({', '.join(found[:5])}); save the image "
            "into one self-contained .mat file (save -v7.3 without links) and upload that."
        )


def _variables(file: h5py.File, matlab: bool) -> list[Variable]:
    """Top-level variables with their MATLAB class (or dtype) and shape in MATLAB order."""
    variables = []
    for name in file:
        if name.startswith("#"):  # "#refs#", "#subsystem#": MATLAB's internal storage
            continue
        item = file.get(name)
        if isinstance(item, h5py.Dataset):
            shape = tuple(reversed(item.shape)) if matlab else tuple(item.shape)
            variables.append(Variable(name, shape, _kind(item)))
        elif isinstance(item, h5py.Group):
            variables.append(Variable(name, (), _class(item) or "struct"))
    return variables


def _kind(dataset: h5py.Dataset) -> str:
    """The MATLAB class of a dataset, or its numpy dtype for plain HDF5."""
    matlab_class = _class(dataset)
    if "MATLAB_empty" in dataset.attrs:
        return f"empty {matlab_class or ''}".strip()
    if dataset.dtype.names is not None:
        return f"complex {matlab_class}" if matlab_class else "compound"
    if matlab_class:
        return matlab_class
    if dataset.dtype.kind in "biuf" and dataset.dtype.name in NUMERIC_CLASSES_BY_DTYPE:
        return NUMERIC_CLASSES_BY_DTYPE[dataset.dtype.name]
    return str(dataset.dtype)


def _class(item: h5py.Dataset | h5py.Group) -> str | None:
    """The ``MATLAB_class`` attribute as text."""
    value = item.attrs.get("MATLAB_class")
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
