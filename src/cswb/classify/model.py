"""The learned layer: a linear text model over normalised call types.

Features are character n-grams inside words (2-5 characters, words padded with spaces, as
scikit-learn's ``char_wb``) plus whole words, weighted by sublinear tf-idf and L2-normalised. A
multinomial logistic regression (scikit-learn, only needed to *train*) scores the categories.
The fitted model is stored as a compressed ``.npz`` of plain arrays (vocabulary, idf, weights,
classes and a JSON header) and loaded with ``allow_pickle=False``, so loading a model file can
never run code, and prediction needs only NumPy.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cswb.errors import ClassifyError

MODEL_NAME = "charlr"
NGRAM_RANGE = (2, 5)
SHIPPED_MODEL = "model.npz"


def text_features(text: str) -> list[str]:
    """Feature strings of one normalised text: words and in-word character n-grams."""
    words = text.split()
    features = [f"w:{w}" for w in words]
    features += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    low, high = NGRAM_RANGE
    for word in words:
        padded = f" {word} "
        for n in range(low, high + 1):
            if n > len(padded):
                break
            features.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return features


@dataclass
class TextModel:
    """A fitted linear model: vocabulary, idf, weights and the categories they score."""

    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray  # (n_features, n_classes), float32
    intercept: np.ndarray  # (n_classes,)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "0"))

    @property
    def label(self) -> str:
        """``model:<name>@<version>`` as written in ``decided_by``."""
        return f"model:{MODEL_NAME}@{self.version}"

    def predict_proba(self, texts: Sequence[str], batch: int = 4096) -> np.ndarray:
        """Probability of each class for each normalised text (rows follow ``texts``)."""
        out = np.empty((len(texts), len(self.classes)), dtype=np.float64)
        for start in range(0, len(texts), batch):
            out[start:start + batch] = self._proba_batch(texts[start:start + batch])
        return out

    def knows(self, texts: Sequence[str]) -> np.ndarray:
        """Whether each normalised text holds evidence the model was trained on: a known word,
        pair of words or letter group of four or more. Short letter groups alone (``as``,
        ``sdf``) occur in any string, and a text without evidence gets little more than the
        class priors: no reason to place it in any category."""
        return np.array([any(f in self.vocabulary and _meaningful(f) for f in text_features(t))
                         for t in texts], dtype=bool)

    def _proba_batch(self, texts: Sequence[str]) -> np.ndarray:
        rows, cols, counts = _sparse_counts(texts, self.vocabulary)
        weights = (1.0 + np.log(counts)) * self.idf[cols]
        norms = np.zeros(len(texts))
        np.add.at(norms, rows, weights * weights)
        weights = weights / np.sqrt(np.maximum(norms, 1e-12))[rows]
        scores = np.tile(self.intercept.astype(np.float64), (len(texts), 1))
        np.add.at(scores, rows, self.coef[cols].astype(np.float64) * weights[:, None])
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def save(self, path: Path) -> None:
        """Write the model as a compressed ``.npz`` of plain arrays."""
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, classes=np.array(self.classes), vocabulary=np.array(words),
                            idf=self.idf.astype(np.float32),
                            coef=self.coef.astype(np.float16),
                            intercept=self.intercept.astype(np.float32),
                            meta=np.array(json.dumps(self.meta, sort_keys=True)))
        tmp.replace(path)


def _meaningful(feature: str) -> bool:
    """A word, a pair of words, or a letter group of at least four letters."""
    return feature.startswith(("w:", "b:")) or len(feature.strip()) >= 4


def _sparse_counts(texts: Sequence[str], vocabulary: dict[str, int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows: list[int] = []
    cols: list[int] = []
    counts: list[int] = []
    for row, text in enumerate(texts):
        seen: dict[int, int] = {}
        for feature in text_features(text):
            col = vocabulary.get(feature)
            if col is not None:
                seen[col] = seen.get(col, 0) + 1
        rows.extend([row] * len(seen))
        cols.extend(seen)
        counts.extend(seen.values())
    return (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
            np.asarray(counts, dtype=np.float64))


def load_model(path: Path | None = None) -> TextModel | None:
    """The model at ``path``, or the shipped one; ``None`` when no model file exists."""
    if path is None:
        ref = resources.files("cswb.classify").joinpath(SHIPPED_MODEL)
        if not ref.is_file():
            return None
        data = ref.read_bytes()
    else:
        if not path.is_file():
            raise ClassifyError(f"model file {path} does not exist")
        data = path.read_bytes()
    return model_from_bytes(data, str(path or SHIPPED_MODEL))


def model_from_bytes(data: bytes, where: str) -> TextModel:
    """Parse a model file's bytes (no pickles are ever loaded)."""
    import io

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            classes = tuple(str(c) for c in npz["classes"])
            words = [str(w) for w in npz["vocabulary"]]
            meta = json.loads(str(npz["meta"]))
            coef = npz["coef"].astype(np.float32)
            idf = npz["idf"].astype(np.float64)
            intercept = npz["intercept"].astype(np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise ClassifyError(f"model file {where} cannot be read: {exc}") from None
    if coef.shape != (len(words), len(classes)) or idf.shape != (len(words),):
        raise ClassifyError(f"model file {where} is inconsistent: weights {coef.shape} for "
                            f"{len(words)} features and {len(classes)} classes")
    meta.setdefault("version", hashlib.sha256(data).hexdigest()[:12])
    return TextModel(classes, {w: i for i, w in enumerate(words)}, idf, coef, intercept, meta)


def train_model(texts: Sequence[str], labels: Sequence[str], weights: Sequence[float],
                meta: dict[str, Any] | None = None, c: float = 10.0) -> TextModel:
    """Fit the model on normalised texts and their categories (needs scikit-learn)."""
    try:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover - dev installs have it
        raise ClassifyError("training the classifier needs scikit-learn: "
                            "pip install 'cswb[train]'") from None
    if len(set(labels)) < 2:
        raise ClassifyError("training needs labelled call types of at least two categories")
    vocabulary: dict[str, int] = {}
    for text in texts:
        for feature in text_features(text):
            vocabulary.setdefault(feature, len(vocabulary))
    rows, cols, counts = _sparse_counts(texts, vocabulary)
    df = np.bincount(cols, minlength=len(vocabulary))
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    values = (1.0 + np.log(counts)) * idf[cols]
    matrix = csr_matrix((values, (rows, cols)), shape=(len(texts), len(vocabulary)))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    matrix = csr_matrix(matrix.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]))
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(matrix, list(labels), sample_weight=np.asarray(weights, dtype=np.float64))
    classes = tuple(str(x) for x in clf.classes_)
    coef = clf.coef_.T.astype(np.float32)
    intercept = clf.intercept_.astype(np.float64)
    if len(classes) == 2:  # binary fits return one row; expand to two columns
        coef = np.hstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    header = dict(meta or {})
    header["version"] = hashlib.sha256(coef.tobytes() + "\n".join(vocabulary).encode()
                                       ).hexdigest()[:12]
    return TextModel(classes, vocabulary, idf, coef, intercept, header)
