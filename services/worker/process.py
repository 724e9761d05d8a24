"""Set-up of every process that decodes images: the worker and each conversion child.

A conversion child is spawned, so it inherits none of the worker's process-wide settings;
both call this one function.
"""

import logging

import boto3

from plexzoom.core.libvips import restrict_loaders
from plexzoom.worker.memory import limit_malloc_arenas


def prepare_decoding_process(malloc_arenas: int, s3: bool = False) -> None:
    """Cap malloc arenas (before libvips starts threads), allow only the libvips loaders
    plexzoom reads with, and quieten libvips' INFO logs. With ``s3``, load botocore's S3
    model now: the first S3 client of a process costs about 0.2 s, which a spare conversion
    child pays while it waits rather than while a job waits."""
    limit_malloc_arenas(malloc_arenas)
    restrict_loaders()  # uploads are decoded here: only the allow-listed loaders may run
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # it logs every threadpool at INFO
    if s3:
        boto3.client("s3", region_name="us-east-1")  # cached in boto3's default session
