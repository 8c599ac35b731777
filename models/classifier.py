"""The triage text classifier at run time: features and a linear model in plain JSON.

Features (the same at training and at run time, see ``models.classifier_train``):

* words: jieba segmentation with a trimmed general dictionary (``words.txt``, the most
  frequent words of jieba's own) plus the domain words (``domain_words.txt``: 欠薪,
  讨说法, 搞么子 ...), punctuation dropped;
* character 1- to 3-grams of the text without punctuation, which carry typos, dialect
  and words the dictionary lacks.

Each block is TF-IDF weighted (sublinear term frequency) and L2-normalised, as
scikit-learn's ``TfidfVectorizer`` does; the scores are the linear model's, and the
probabilities its softmax divided by a temperature fitted on the validation split
(calibration). A model is a JSON document (gzip) of vocabularies, IDF weights and
coefficients (float16, base64): loading it runs no code, unlike a pickle, and needs no
scikit-learn.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import math
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "triage_data"
MODEL_FILE = DATA_DIR / "model.json.gz"
WORDS_FILE = DATA_DIR / "words.txt"
DOMAIN_FILE = DATA_DIR / "domain_words.txt"
FORMAT = "tiaojie-triage-linear/2"

_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Width-folded, lower case, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").lower().split())


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    with warnings.catch_warnings():
        # jieba 0.42's regexes are not raw strings: Python 3.12 warns while compiling it.
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer(str(WORDS_FILE))
    tokenizer.initialize()
    with DOMAIN_FILE.open("rb") as fh:  # a path would be opened and never closed
        tokenizer.load_userdict(fh)
    return tokenizer


# Segmenting is the dear part of reading a text; the same words (a template, a form's
# fixed phrases, a complaint read by triage and then by the search index) are cut once.
SEGMENT_CACHE = 4096


def words(text: str) -> list[str]:
    """jieba words of the normalised text, punctuation and spaces dropped."""
    return list(_cut(normalise(text), search=False))


def search_words(text: str) -> list[str]:
    """:func:`words` and the shorter words inside the long ones (jieba's search mode:
    中华人民共和国 also gives 中华, 人民, 共和国), for a full-text index."""
    return list(_cut(normalise(text), search=True))


@lru_cache(maxsize=SEGMENT_CACHE)
def _cut(text: str, *, search: bool) -> tuple[str, ...]:
    tokenizer = _tokenizer()
    out: list[str] = tokenizer.lcut_for_search(text) if search else tokenizer.lcut(text)
    return tuple(w for w in out if not _NOT_TEXT.fullmatch(w))


# Words that carry no subject: shown as a reason they explain nothing (那个, 我们).
# fmt: off
_FUNCTION_WORDS = frozenset({
    "那个", "这个", "一个", "我们", "你们", "他们", "她们", "自己", "什么", "怎么", "这么", "那么",
    "就是", "还是", "已经", "现在", "没有", "不是", "可以", "这样", "那样", "一直", "还有", "因为",
    "所以", "但是", "而且", "如果", "要是", "的话", "时候", "这里", "那里", "大家", "有人", "这事",
    "一下", "说话", "知道", "觉得", "一点", "出来", "起来", "过来", "一起", "这种", "那种", "每天",
    "天天", "好几",
})
# fmt: on


_COUNT = re.compile(r"[\d一二两三四五六七八九十百千万几多余来半]+[块元分毛个天年月岁次号点份]?")


def _shown_words(text: str) -> frozenset[str]:
    """The words a reason may name: the text's own jieba words, less function words and
    counts (五十 says how many, not what about)."""
    return frozenset(w for w in words(text) if not _COUNT.fullmatch(w)) - _FUNCTION_WORDS


def char_ngrams(text: str, low: int = 1, high: int = 3) -> list[str]:
    clean = _NOT_TEXT.sub("", normalise(text))
    return [clean[i : i + n] for n in range(low, high + 1) for i in range(len(clean) - n + 1)]


@dataclass
class Block:
    """One TF-IDF block: vocabulary (feature -> column) and IDF weights."""

    vocab: dict[str, int]
    idf: np.ndarray

    def vector(self, tokens: list[str]) -> dict[int, float]:
        counts = Counter(t for t in tokens if t in self.vocab)
        weights = {
            self.vocab[t]: (1.0 + math.log(n)) * float(self.idf[self.vocab[t]])
            for t, n in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {k: w / norm for k, w in weights.items()} if norm else {}


@dataclass
class LinearModel:
    """Scores ``x @ coef + intercept`` over the word block then the character block."""

    classes: list[str]
    coef: np.ndarray  # (n_word + n_char) x n_classes
    intercept: np.ndarray
    temperature: float = 1.0

    def proba(self, features: dict[int, float]) -> dict[str, float]:
        scores = self.intercept.copy()
        if features:
            rows = np.fromiter(features.keys(), dtype=np.int64, count=len(features))
            vals = np.fromiter(features.values(), dtype=np.float64, count=len(features))
            scores = scores + vals @ self.coef[rows]
        z = scores / self.temperature
        z = np.exp(z - z.max())
        p = z / z.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}


@dataclass
class TextModel:
    """The category model and the priority model over one set of features."""

    word_block: Block
    char_block: Block
    category: LinearModel
    priority: LinearModel
    meta: dict[str, Any]
    _feature_names: list[str] = field(default_factory=list, repr=False, compare=False)
    _answers: Callable[[str], tuple[dict[str, float], dict[str, float], list[str]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def features(self, text: str) -> dict[int, float]:
        found = self.word_block.vector(words(text))
        offset = len(self.word_block.vocab)
        for k, v in self.char_block.vector(char_ngrams(text)).items():
            found[k + offset] = v
        return found

    def predict(self, text: str) -> tuple[dict[str, float], dict[str, float], list[str]]:
        """Category and priority probabilities, and the words that weighed most for the
        winning category (the "why" shown to a person). The same text gets the same
        answer from the same model: the last :data:`SEGMENT_CACHE` are kept."""
        if self._answers is None:
            self._answers = lru_cache(maxsize=SEGMENT_CACHE)(self._predict)
        cat, pri, why = self._answers(text)
        return dict(cat), dict(pri), list(why)

    def _predict(self, text: str) -> tuple[dict[str, float], dict[str, float], list[str]]:
        x = self.features(text)
        cat = self.category.proba(x)
        pri = self.priority.proba(x)
        best = max(cat, key=lambda c: cat[c])
        return cat, pri, self.evidence(x, best, shown=_shown_words(text))

    def evidence(
        self,
        x: dict[int, float],
        category: str,
        limit: int = 4,
        *,
        shown: frozenset[str] | None = None,
    ) -> list[str]:
        """The features that weighed most for ``category``; with ``shown``, only those
        among these words (a person reads 去区政府 as 去 / 区政府, not as 去区)."""
        j = self.category.classes.index(category)
        names = self._names()
        weighed = sorted(
            ((v * float(self.category.coef[k, j]), k) for k, v in x.items()), reverse=True
        )
        out: list[str] = []
        for w, k in weighed:
            name = names[k]
            if w <= 0 or len(out) >= limit:
                break
            if shown is not None and name not in shown:
                continue
            if len(name) >= 2 and not any(name in seen or seen in name for seen in out):
                out.append(name)
        return out

    def _names(self) -> list[str]:
        if not self._feature_names:
            self._feature_names = _vocab_list(self.word_block) + _vocab_list(self.char_block)
        return self._feature_names

    # --- (de)serialisation ------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        def lin(m: LinearModel) -> dict[str, Any]:
            return {
                "classes": m.classes,
                "coef": _pack(m.coef),
                "intercept": np.round(m.intercept, 5).tolist(),
                "temperature": round(m.temperature, 4),
            }

        return {
            "format": FORMAT,
            "meta": self.meta,
            "words": _vocab_list(self.word_block),
            "word_idf": _pack(self.word_block.idf),
            "chars": _vocab_list(self.char_block),
            "char_idf": _pack(self.char_block.idf),
            "category": lin(self.category),
            "priority": lin(self.priority),
        }

    def to_bytes(self) -> bytes:
        raw = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        return gzip.compress(raw.encode("utf-8"), compresslevel=9, mtime=0)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TextModel:
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a triage model: format {doc.get('format')!r}")

        def lin(d: dict[str, Any]) -> LinearModel:
            classes = list(d["classes"])
            return LinearModel(
                classes=classes,
                coef=_unpack(d["coef"]).reshape(-1, len(classes)),
                intercept=np.asarray(d["intercept"], dtype=np.float64),
                temperature=float(d["temperature"]),
            )

        return cls(
            word_block=Block({w: i for i, w in enumerate(doc["words"])}, _unpack(doc["word_idf"])),
            char_block=Block({w: i for i, w in enumerate(doc["chars"])}, _unpack(doc["char_idf"])),
            category=lin(doc["category"]),
            priority=lin(doc["priority"]),
            meta=dict(doc.get("meta") or {}),
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> TextModel:
        return cls.from_json(json.loads(gzip.decompress(blob).decode("utf-8")))


def _pack(values: np.ndarray) -> str:
    """Numbers as base64 of little-endian float16: parsing numbers written as text is
    the slow part of loading a model, and three significant digits are ample for
    these weights."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f2").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float64)


def _vocab_list(block: Block) -> list[str]:
    out = [""] * len(block.vocab)
    for t, i in block.vocab.items():
        out[i] = t
    return out


@lru_cache(maxsize=1)
def shipped_model() -> TextModel:
    """The model versioned in the repository (``make model`` writes it)."""
    return TextModel.from_bytes(MODEL_FILE.read_bytes())
