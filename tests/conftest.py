"""Shared test set-up.

pytester's in-process runs restore ``sys.modules`` afterwards; numpy-based extensions
can not be imported twice in one process, so they are imported once here, before any
inner run, and stay loaded.
"""
import numpy  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import pandas.core.arrays.arrow.extension_types  # noqa: F401,E402  (registers Arrow extension types once)

try:  # torch.export's inductor caches register classes at import: never twice in one process
    import torch.export._trace  # noqa: F401
except ImportError:  # torch is optional for the tests that do not split models
    pass

from services import docker_client, docker_engine  # noqa: E402,F401  (one engine for every test folder)
