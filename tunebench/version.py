"""The version of tunebench (its own module, so that any module can read it without importing the
package's ``__init__``)."""

from __future__ import annotations

import platform
import sys

__version__ = "0.1.0"


def run_versions() -> dict[str, str]:
    """Versions of Python, tunebench, numpy and of the other packages the run has imported, for an
    experiment's ``metadata.json`` (from their ``__version__``: reading installed package metadata
    takes tens of milliseconds, which shows in short simulations). Called when an experiment folder
    is created or resumed."""
    versions = {"python": platform.python_version(), "platform": sys.platform, "tunebench": __version__}
    for pkg, module in (("numpy", "numpy"), ("pandas", "pandas"), ("scikit-learn", "sklearn"), ("scipy", "scipy"),
                        ("torch", "torch"), ("onnxruntime", "onnxruntime"), ("ray", "ray")):
        version = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(version, str):
            versions[pkg] = version
    return versions
