"""reprise: run transformer LMs on the CPU along arbitrary layer paths.

Everything here is the C++ core's (reprise._reprise), the same code the CLI runs: a Model's
logits, generations and evaluation results equal the CLI's. Errors raise reprise.Error (a
RuntimeError) whose message is the CLI's one-line message.

    m = reprise.Model("models/stories260K.gguf")
    m.logits("Once upon a time", path="repeat:1:4")
    reprise.evaluate(m, "arc_easy", limit=20)       # the dict `reprise eval -o` writes
    reprise.Store("scan.db").statistics()           # records for pandas.DataFrame
"""
from ._reprise import Error, Model, Path, Store, TextStream, __version__, evaluate, scan

__all__ = ["Error", "Model", "Path", "Store", "TextStream", "evaluate", "scan"]
