# Type stubs of the reprise package (the C++ module reprise._reprise); docstrings are the
# module's own (help(reprise.Model)).
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

TokensOrText = Union[str, Sequence[int]]

class Error(RuntimeError):
    """A reprise error: the CLI's one-line message (file, field or argument named)."""

class Path:
    @staticmethod
    def parse(spec: str, n_layers: int) -> Path: ...
    @property
    def canonical(self) -> str: ...
    @property
    def layers(self) -> list[int]: ...
    @property
    def alphas(self) -> list[float]: ...
    def __len__(self) -> int: ...

class TextStream(Iterator[str]):
    def __iter__(self) -> TextStream: ...
    def __next__(self) -> str: ...

class Model:
    def __init__(self, path: str, threads: Optional[int] = None) -> None: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_vocab(self) -> int: ...
    @property
    def n_embd(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def info(self) -> dict[str, Any]: ...
    def tokenize(self, text: str, bos: Optional[bool] = None, special: bool = False) -> list[int]: ...
    def detokenize(self, ids: Sequence[int]) -> str: ...
    def logits(
        self, tokens_or_text: TokensOrText, path: Optional[str] = None, all_positions: bool = False
    ) -> npt.NDArray[np.float32]:
        """[n_vocab] (last position) or [T, n_vocab] float32."""
    def hidden_states(
        self, tokens_or_text: TokensOrText, path: Optional[str] = None
    ) -> npt.NDArray[np.float32]:
        """[P + 1, T, n_embd] float32: [0] embeddings, [p + 1] after path position p."""
    def generate(
        self,
        prompt: TokensOrText,
        path: Optional[str] = None,
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int = 42,
        top_k: int = 40,
        top_p: float = 0.95,
        stop: Sequence[str] = (),
        stream: bool = False,
    ) -> Union[str, TextStream]: ...

class Store:
    def __init__(self, path: str) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def meta(self) -> dict[str, str]: ...
    def configs(self, phase: str = "") -> list[dict[str, Any]]: ...
    def scores(self, phase: str = "", config: Optional[str] = None) -> list[dict[str, Any]]: ...
    def statistics(self, phase: str = "search") -> list[dict[str, Any]]: ...
    def baselines(self, phase: str = "search") -> list[dict[str, Any]]: ...

def evaluate(
    model: Model,
    tasks: Union[str, Sequence[str]],
    path: Optional[str] = None,
    limit: Optional[int] = None,
    seed: int = 1234,
    batch_items: int = 16,
    data_dir: Optional[str] = None,
) -> dict[str, Any]: ...
def scan(
    model: Union[Model, str],
    tasks: Union[str, Sequence[str]],
    store: str,
    limit: Optional[int] = None,
    modes: Sequence[str] = ("repeat",),
    strategy: str = "dense",
    block_min: int = 1,
    block_max: int = 0,
    controls: int = 5,
    validate: int = 0,
    seed: int = 1234,
    threads: Optional[int] = None,
    quiet: bool = True,
) -> dict[str, Any]: ...
