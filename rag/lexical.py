"""BM25 over words as French speakers write them: elisions split, stop words dropped, accents
folded (so `Etats` matches `États`), and words cut to their first six letters.

The six-letter prefix is a light stemmer that works as well as Snowball on French QA (PIAF) and
also matches English cognates of French words (`cooperation`/`coopération`, `security`/
`sécurité`, `diplomatic`/`diplomatique`), which helps English questions about French text.
Character 4-grams (`char_grams`) reach what prefixes miss: words that differ at the start or
past six letters (`désengagement`/`engagement`/`disengaging`, `retrait`/`retirent`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

K1 = 1.2  # BM25's term-frequency saturation, unless an engine is given another
WORD = re.compile(r"\w+", re.UNICODE)
ELISION = re.compile(r"\b(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)

STOP_WORDS = frozenset("""
interview entretien interviewer journaliste dit dire déclare déclaré affirme affirmé pense
said say says tell tells told think thinks mention mentions mentioned

a à ai aie aient aies ait alors as au aucun aura aurai auraient aurais aurait auras aurez auriez
aurions aurons auront aussi autre aux avaient avais avait avant avec avez aviez avions avoir avons
ayant ayez ayons c ça car ce ceci cela celle celles celui cependant ces cet cette ceux chaque ci
comme comment d dans de des donc dont du elle elles en encore es est et étaient étais était étant
été êtes étiez étions être eu eue eues eurent eus eusse eut eux fait faites fois font furent fus
fut ici il ils j je jusqu l la là le les leur leurs lui m ma mais me même mes moi mon n ne ni nos
notre nous on ont ou où par parce pas peu peut plus pour pourquoi qu quand que quel quelle quelles
quels qui quoi s sa sans se sera serai seraient serais serait seras serez seriez serions serons
seront ses si sien son sont sous soyez soyons suis sur t ta te tes toi ton tous tout toute toutes
très tu un une unes uns vos votre vous vu y est-ce
the of and to in is are was were be been being a an that this these those it its for on with as by
at from or but not what which who whom whose when where why how do does did done have has had
having i you he she we they me him her us them my your his our their there here about into over
than then so such can could would should will shall may might must also just only very any some
all each other more most no nor own same too s t don now
""".split())


def nfc(text: str) -> str:
    """`text` with its accents composed: a transcript saved decomposed (`e` + U+0301, as some
    systems write files) would otherwise break its words at every accent for `\\w`. Only what
    is read is composed; citations keep the file's own characters and offsets."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


# ’ ‘ ʼ ＇: what phones and word processors type for an apostrophe.
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2019\u2018\u02bc\uff07", "'"))


def as_read(text: str) -> str:
    """The text as the encoders are given it, in Unicode's compatibility form (accents
    composed; ligatures, full-width letters and non-breaking spaces as plain ones) with plain
    apostrophes. A phone types `qu’a` where a keyboard types `qu'a`, text copied from a PDF
    has `ﬁ` for `fi`, and the models read each pair differently; the same question, or
    transcript, should give the same answers either way."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.translate(_APOSTROPHES)


def fold(word: str) -> str:
    """The word without its accents: capitals often lose theirs in French (`Etats`)."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_NAME = re.compile(r"\w[\w'’-]*")


def names(text: str) -> list[str]:
    """The names a question gives: the capitalised words of each of its sentences past the
    first (which any sentence capitalises: "Pourquoi ?" after a question names nothing), read
    past elision (`l'Ukraine` names Ukraine), of three letters or more."""
    found = []
    for sentence in _SENTENCE_END.split(nfc(text)):
        words = [ELISION.sub("", w) for w in _NAME.findall(sentence)]
        found += [w for w in words[1:] if w[:1].isupper() and len(w) > 2]
    return found


# A full stop ends a sentence after a word, not after an initial or an abbreviation ("M.
# Blinken", "U.S. Army", "av. J.-C.").
_SENTENCE_END = re.compile(r"(?<=[?!…])\s+|(?<=[^\W\d_]{3}\.)\s+|\n+")


PREFIX = 6


@lru_cache(maxsize=65536)
def _term(word: str) -> str:
    return fold(word)[:PREFIX]


def tokenize(text: str) -> list[str]:
    """Index terms of a text: lower-cased, elisions split, stop words out, folded, cut."""
    text = ELISION.sub(" ", nfc(text).lower())
    return [_term(w) for w in WORD.findall(text) if w not in STOP_WORDS and not w.isdigit()
            or (w.isdigit() and len(w) == 4)]


GRAM = 4


def char_grams(text: str) -> list[str]:
    """Folded character 4-grams of each content word (a shorter word stays whole)."""
    text = ELISION.sub(" ", nfc(text).lower())
    return [g for w in WORD.findall(text) if w not in STOP_WORDS and not w.isdigit()
            for g in _grams(w)]


@lru_cache(maxsize=65536)
def _grams(word: str) -> tuple[str, ...]:
    word = fold(word)
    return tuple(word[i:i + GRAM] for i in range(len(word) - GRAM + 1)) or (word,)


@dataclass
class BM25:
    """Okapi BM25 over a list of documents, scores normalised to [0, 1] per query.

    The normalised score divides by the most a document could score for this query, so it is
    comparable across questions and usable for abstention.

    Postings are numpy arrays (per term: documents, term counts and each count's BM25
    denominator) slicing three corpus-wide arrays, so a query costs a few vector operations
    per term however large the corpus, and the index stays compact at a million passages.
    """

    documents: list[str]
    k1: float = K1
    b: float = 0.75
    analyzer: Callable[[str], list[str]] = field(default=tokenize, repr=False)  # text -> terms
    _postings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        init=False, repr=False)

    def __post_init__(self):
        term_ids: dict[str, int] = {}
        terms_of, docs_of, tfs_of = array("i"), array("i"), array("i")
        lengths = np.zeros(len(self.documents), dtype=np.float32)
        for i, doc in enumerate(self.documents):
            terms = self.analyzer(doc)
            lengths[i] = len(terms)
            for term, tf in Counter(terms).items():
                terms_of.append(term_ids.setdefault(term, len(term_ids)))
                docs_of.append(i)
                tfs_of.append(tf)
        n = max(len(self.documents), 1)
        self._avg = float(lengths.mean()) if len(lengths) else 1.0
        self._norm = self.k1 * (1 - self.b + self.b * lengths / max(self._avg, 1e-9))
        self._postings = _postings(term_ids, terms_of, docs_of, tfs_of, self._norm)
        self._idf = {t: math.log(1 + (n - len(p[0]) + 0.5) / (len(p[0]) + 0.5))
                     for t, p in self._postings.items()}
        self._max_idf = math.log(1 + (n - 0.5) / 1.5)

    @property
    def vocabulary(self) -> set[str]:
        return set(self._postings)

    def idf(self, word: str) -> float:
        """The idf of a word's index term (a term no document has weighs the most)."""
        terms = self.analyzer(word)
        return self._idf.get(terms[0], self._max_idf) if terms else 0.0

    def scores(self, query: str, ignore: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
        """Normalised BM25 score of every document for the query (zeros if no term matches).

        Terms in `ignore` (such as the speaker's name) neither score nor count as missing.
        """
        out = np.zeros(len(self.documents), dtype=np.float32)
        terms, best = self._terms(query, ignore)
        for idf, (docs, tfs, denominators) in terms:
            out[docs] += idf * tfs * (self.k1 + 1) / denominators
        if best > 0:  # in place: at a million documents a second array costs as much again
            np.divide(out, best, out=out)
        return out

    def scores_of(self, query: str, ids: np.ndarray,
                  ignore: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
        """`scores(query)[ids]`, the same numbers, without scoring every other document: each
        term's postings are searched for the documents asked, so on a large corpus the cost
        follows the candidates, not the term's whole postings."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float32)
        terms, best = self._terms(query, ignore)
        for idf, (docs, tfs, denominators) in terms:
            at = np.minimum(np.searchsorted(docs, ids), len(docs) - 1)
            hit = docs[at] == ids
            at = at[hit]
            out[hit] += idf * tfs[at] * (self.k1 + 1) / denominators[at]
        return out / best if best > 0 else out

    def _terms(self, query: str, ignore: set[str] | frozenset[str]) -> tuple[list, float]:
        """The postings and idf of each query term some document has, and the normaliser: the
        most a document could score, which counts the terms no document has too."""
        found, best = [], 0.0
        for term in self.analyzer(query):
            if term in ignore:
                continue
            idf = self._idf.get(term, self._max_idf)
            best += idf * (self.k1 + 1)
            postings = self._postings.get(term)
            if postings is not None:
                found.append((idf, postings))
        return found, best


@dataclass
class GramBM25:
    """BM25 over character grams, scored only for the documents asked (the candidates).

    A word gives several grams, so postings would make every query touch far more of a large
    corpus than the words' own do; instead each document keeps its distinct grams and counts
    (compact arrays), and a query gathers those of its candidates: the cost follows the number
    of candidates, not the corpus. Scores equal `BM25(documents, analyzer=char_grams)`.
    """

    documents: list[str]
    k1: float = K1
    b: float = 0.75

    def __post_init__(self):
        self._ids: dict[str, int] = {}
        grams_of, counts_of = array("i"), array("i")
        ends = np.zeros(len(self.documents) + 1, dtype=np.int64)
        lengths = np.zeros(len(self.documents), dtype=np.float32)
        for i, doc in enumerate(self.documents):
            counts = Counter(char_grams(doc))
            lengths[i] = sum(counts.values())
            for gram, tf in counts.items():
                grams_of.append(self._ids.setdefault(gram, len(self._ids)))
                counts_of.append(tf)
            ends[i + 1] = len(grams_of)
        self._grams = np.frombuffer(grams_of, dtype=np.int32)
        self._counts = np.frombuffer(counts_of, dtype=np.int32).astype(np.float32)
        self._ends = ends
        n = max(len(self.documents), 1)
        frequencies = np.bincount(self._grams, minlength=len(self._ids))
        self._idf = np.log(1 + (n - frequencies + 0.5) / (frequencies + 0.5))
        self._max_idf = math.log(1 + (n - 0.5) / 1.5)
        avg = float(lengths.mean()) if len(lengths) else 1.0
        self._norm = self.k1 * (1 - self.b + self.b * lengths / max(avg, 1e-9))

    def scores(self, query: str, ids: np.ndarray,
               ignore: set[str] | frozenset[str] = frozenset()) -> np.ndarray:
        """Normalised score of the documents `ids` (in that order) for the query."""
        out = np.zeros(len(ids), dtype=np.float32)
        known = np.zeros(len(self._ids), dtype=np.float64)
        best = 0.0
        for gram in char_grams(query):
            if gram in ignore:
                continue
            g = self._ids.get(gram)
            idf = self._max_idf if g is None else float(self._idf[g])
            best += idf * (self.k1 + 1)
            if g is not None:
                known[g] += idf
        if best <= 0 or not len(ids):
            return out
        ids = np.asarray(ids, dtype=np.int64)
        starts, sizes = self._ends[ids], self._ends[ids + 1] - self._ends[ids]
        rows = np.repeat(np.arange(len(ids)), sizes)
        at = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes) \
            + np.repeat(starts, sizes)
        weight = known[self._grams[at]]
        hit = weight > 0
        tf, rows = self._counts[at][hit], rows[hit]
        part = weight[hit] * tf * (self.k1 + 1) / (tf + self._norm[ids][rows])
        out += np.bincount(rows, part, minlength=len(ids)).astype(np.float32)
        return out / best


def _postings(term_ids: dict[str, int], terms_of: array, docs_of: array, tfs_of: array,
              norm: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per term, views of its documents (ascending), counts and `tf + norm[doc]`, computed
    once in float32 exactly as scoring used to compute them per query."""
    terms = np.frombuffer(terms_of, dtype=np.int32)
    order = np.argsort(terms, kind="stable")
    docs = np.frombuffer(docs_of, dtype=np.int32)[order]
    tfs = np.frombuffer(tfs_of, dtype=np.int32)[order].astype(np.float32)
    denominators = tfs + norm[docs]
    ends = np.cumsum(np.bincount(terms, minlength=len(term_ids)))
    starts = ends - np.bincount(terms, minlength=len(term_ids))
    return {term: (docs[starts[t]:ends[t]], tfs[starts[t]:ends[t]],
                   denominators[starts[t]:ends[t]])
            for term, t in term_ids.items()}
