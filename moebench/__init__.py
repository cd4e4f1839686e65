"""moebench: benchmark local Mixture-of-Experts language models.

Public names are re-exported lazily so that `import moebench` (and the CLI's start-up)
stays cheap: nothing here imports torch, pandas or an HTTP client.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
