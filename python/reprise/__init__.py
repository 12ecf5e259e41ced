"""reprise: run transformer LMs on the CPU along arbitrary layer paths.

The classes are the C++ core's (reprise._reprise); errors raise reprise.Error (a RuntimeError)
with the CLI's one-line message.
"""
from ._reprise import Error, Model, Path

__all__ = ["Error", "Model", "Path"]
