"""Find the passages that address a question, by fusing several signals.

Each passage is scored by a weighted sum of: its own similarity to the question under each
embedding model and under French BM25, and the same signals for its whole answer and for the
interviewer question it answers (context that a one-sentence passage lacks); plus BM25 over
character 4-grams of the passage with its question, which matches related words that share no
prefix (`désengagement`/`engagement`, English/French cognates). Under each model, a passage
also carries how far it lies from the rest of the corpus: a passage close to everything (a
hub) otherwise tops questions it does not answer, most of all under the English model on
French text. And under the multilingual model, a passage also scores its closest clause: a
long sentence that answers several things at once matches a question about one of them. Two
more are computed only when the weights read them (weights fitted on encyclopedic text do):
BM25 over each document with its question, and how much of the question a document repeats
word for word (rag/overlap.py). Dense cosines and the normalised BM25 score are on fixed
scales, so the fused score is comparable across questions and a single calibrated threshold
decides abstention. When the best two answers lie within a hair of each other and the index
holds multilingual-e5-small, e5 decides which comes first (`settle_close_call`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from .corpus import Document, Passage
from .coverage import Coverage, content_words, corpus_words
from .embed import (
    DEFAULT_BACKEND,
    E5_MODEL,
    MULTILINGUAL_MODEL,
    Deferred,
    Embedder,
    embed_questions,
    load_embedder,
)
from .errors import QuestionError
from .index import FLAT_LIMIT, Index
from .language import language
from .lexical import BM25, K1, GramBM25, char_grams, names, tokenize
from .overlap import SIGNALS as OVERLAP
from .overlap import overlap, query_terms, spelling
from .respell import respell, spelling_of
from .threads import named_pool

SIGNALS = ("passage", "answer", "question", "pair")
# Each model's signals are named "<kind>.<signal>"; any other model (the sentence-transformers
# one the index is built with) is "dense".
KINDS = {MULTILINGUAL_MODEL: "multilingual", E5_MODEL: "e5"}
LEAD_CAP = 0.15  # a lead past this tells no more (past the public set's 95th percentile)
T = TypeVar("T")


@dataclass(frozen=True)
class Weights:
    """Fusion weights per signal, and a linear abstention rule on the top passage's signals.

    `rank` orders passages; the top passage is kept when `abstain . signals + abstain_bias > 0`.
    `calibration` (margin slope, lead slope, intercept) reads that margin, and for an answer
    how far its answer leads the next (`lead`), as the probability that the passage comes from
    the answer asked about (`certainty`), fitted on questions each rule was fitted without
    (`bench/calibration.py`).
    Both are calibrated on the public gold set by `bench/tune.py` (see docs/quality.md); a
    signal the index lacks (a model left out) simply does not count.
    `tiebreak`: when the best two answers' fused scores lie closer than this, and the index
    holds multilingual-e5-small (`rag build --e5`), e5 chooses between them
    (`settle_close_call`, measured by `bench/tiebreak.py`); 0 turns it off.
    """

    rank: tuple[tuple[str, float], ...] = (
        ("dense.passage", 0.015), ("dense.answer", 0.309), ("dense.question", 0.073),
        ("dense.pair", 0.0), ("dense.distinct", 0.508), ("multilingual.passage", 0.311),
        ("multilingual.answer", 0.089), ("multilingual.question", 0.453),
        ("multilingual.pair", 0.087), ("multilingual.distinct", 0.117),
        ("multilingual.clause", 0.359), ("lexical.passage", 0.018), ("lexical.answer", 0.0),
        ("lexical.question", 0.042), ("lexical.pair", 0.138), ("grams.pair", 0.536))
    abstain: tuple[tuple[str, float], ...] = (
        ("dense.passage", 0.313), ("dense.answer", 0.656), ("dense.question", 0.894),
        ("dense.pair", 0.636), ("dense.distinct", -0.008), ("multilingual.passage", 1.012),
        ("multilingual.answer", 1.177), ("multilingual.question", 0.983),
        ("multilingual.pair", 1.167), ("multilingual.distinct", -0.275),
        ("multilingual.clause", 1.034), ("lexical.passage", 0.412), ("lexical.answer", 0.661),
        ("lexical.question", 0.229), ("lexical.pair", 0.548), ("grams.pair", 0.75),
        ("fused", 0.677), ("query.unknown_names", -1.191), ("query.unknown_terms", -1.78),
        ("query.cross_lingual", 0.131), ("query.unknown_terms_same", -1.08),
        ("query.term_coverage", 1.607))
    abstain_bias: float = -0.962
    calibration: tuple[float, float, float] = (0.7, 47.884, -1.448)
    candidates: int = 100
    tiebreak: float = 0.02

    def uses(self, prefix: str) -> bool:
        """Whether any signal named `prefix...` counts, for ranking or for abstention."""
        return any(w and n.startswith(prefix) for n, w in self.rank + self.abstain)

    def vector(self, names: list[str], which: str = "rank") -> np.ndarray:
        table = dict(getattr(self, which))
        return np.array([table.get(n, 0.0) for n in names], dtype=np.float32)


@dataclass(frozen=True)
class Hit:
    passage: Passage
    document: Document
    score: float
    confidence: float = 0.0
    signals: dict = field(default_factory=dict, compare=False)
    lead: float = LEAD_CAP  # of the question's best answer over the next, before any tie-break


@dataclass(frozen=True)
class Scope:
    """What a question is compared with to tell whether it is answered at all: the words and
    the language of the transcripts it may cite (see `query_features`)."""

    vocabulary: frozenset[str]
    coverage: Coverage
    language: str


@dataclass(frozen=True)
class Selection:
    """Part of the corpus a question may cite: a mask over the passages, and its scope."""

    mask: np.ndarray
    scope: Scope


SELECTIONS_KEPT = 64  # selections whose scopes are kept, as a portal asks of a few at a time
SPELLINGS_KEPT = 50_000  # documents whose folded text is kept for the overlap signals


@dataclass
class Engine:
    """An index with its embedders and lexical tables, ready to answer questions."""

    index: Index
    embedders: dict[str, Embedder]
    weights: Weights = Weights()
    k1: float = K1  # BM25's saturation in the lexical tables: sentences of dense prose want less
    _bm25: dict[str, BM25] = field(default_factory=dict, repr=False)
    _grams: GramBM25 | None = field(default=None, repr=False)
    _titled: BM25 | None = field(default=None, repr=False)

    def __post_init__(self):
        corpus = self.index.corpus
        k1 = self.k1
        self._bm25 = {
            "passage": BM25([p.text for p in corpus.passages], k1=k1),
            "answer": BM25([corpus.document_text(d) for d in corpus.documents], k1=k1),
            "question": BM25([d.question or "" for d in corpus.documents], k1=k1),
            "pair": BM25([f"{corpus.documents[p.doc].question or ''} {p.text}"
                          for p in corpus.passages], k1=k1),
        }
        self._doc_of = np.fromiter((p.doc for p in corpus.passages), dtype=np.int64,
                                   count=len(corpus.passages))
        self._sources = {name: i for i, name in enumerate(corpus.texts)}
        of_doc = np.array([self._sources[d.source] for d in corpus.documents], dtype=np.int32)
        self._source_of = of_doc[self._doc_of] if len(of_doc) else np.zeros(0, np.int32)
        # Who is speaking is known for every passage: naming them in a question selects nothing.
        self._speaker_terms = {t for d in corpus.documents for t in tokenize(d.speaker or "")}
        self._speaker_words = frozenset(w for d in corpus.documents
                                        for w in spelling(d.speaker or "").split())
        vocabulary = set(self._speaker_terms)
        for bm25 in self._bm25.values():
            vocabulary.update(bm25.vocabulary)
        self._grams = GramBM25(self._bm25["pair"].documents)
        self._speaker_grams = {g for d in corpus.documents for g in char_grams(d.speaker or "")}
        self._distinct: dict[str, np.ndarray] = {}
        for name in models_read(self.weights, list(self.index.vectors)):
            distinct_of(self, name)  # now for the models the weights read; others on first use
        n = len(corpus.passages)
        self._clause_rows = {name: np.searchsorted(vec.clause_of, np.arange(n + 1))
                             for name, vec in self.index.vectors.items() if len(vec.clauses)}
        known, self._ranked_words = self.index.words or corpus_words(corpus)
        use = self.index.vectors.get(MULTILINGUAL_MODEL)
        self._coverage = Coverage(
            known, use.words.astype(np.float32) if use is not None else np.zeros((0, 1)),
            self.embedders.get(MULTILINGUAL_MODEL),
            frozenset(w for d in corpus.documents for w in content_words(d.speaker or "")))
        self._scope = Scope(frozenset(vocabulary), self._coverage,
                            texts_language(corpus.texts.values()))
        self._selections: dict[frozenset[int], Selection] = {}
        self._spellings: dict[int, str] = {}
        self._spelling = spelling_of([*(p.text for p in corpus.passages),
                                  *{d.question for d in corpus.documents if d.question}],
                                 {d.speaker for d in corpus.documents if d.speaker},
                                 language=self._scope.language)
        self._read: dict[str, str] = {}


def models_read(weights: Weights, models: list[str]) -> tuple[str, ...]:
    """The models whose signals the weights read: a question is embedded only with these, as
    each model costs its encoding (multilingual-e5-small about 20 ms, where the others take a
    few). The multilingual encoder also counts when abstention reads term coverage, whose
    words it embeds."""
    def read(name):
        return weights.uses(f"{KINDS.get(name, 'dense')}.") or (
            name == MULTILINGUAL_MODEL and weights.uses("query.term_coverage"))
    return tuple(name for name in models if read(name))


def titled(engine: Engine) -> BM25:
    """BM25 over each document's question with its whole text, built on first use: only
    weights that read `lexical.titled` need it (a Wikipedia paragraph's title names what the
    paragraph is about, which none of its sentences may repeat)."""
    if engine._titled is None:
        corpus = engine.index.corpus
        engine._titled = BM25([f"{d.question or ''} {corpus.document_text(d)}"
                               for d in corpus.documents], k1=engine.k1)
    return engine._titled


def select_sources(engine: Engine, sources: Iterable[str] | None) -> Selection | None:
    """The passages a question may cite when it names its transcripts (as citations name
    them), or None for all of them. An unknown name is an error, not an empty result, so a
    typo does not pass for "the interview does not say"."""
    if sources is None:
        return None
    if isinstance(sources, bytes) or not isinstance(sources, str | Iterable):
        raise QuestionError("sources must be a list of transcript names")
    sources = [sources] if isinstance(sources, str) else list(sources)
    if not all(isinstance(s, str) for s in sources):
        raise QuestionError("sources must be a list of transcript names, as text")
    wanted = set(sources)
    if not wanted:
        raise QuestionError("no transcript selected: leave `sources` out to search them all")
    known = engine._sources
    unknown = [s for s in sources if s not in known]
    if unknown:
        names = list(known)
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise QuestionError(f"no transcript named {unknown[0]!r}; the transcripts are {listed}")
    if len(wanted) == len(known):
        return None
    key = frozenset(known[s] for s in wanted)
    found = engine._selections.get(key)
    if found is None:
        found = Selection(np.isin(engine._source_of, sorted(key)), scope_of(engine, key))
        if len(engine._selections) >= SELECTIONS_KEPT:
            engine._selections.clear()
        engine._selections[key] = found
    return found


def scope_of(engine: Engine, sources: frozenset[int]) -> Scope:
    """The words and language of some of the transcripts: a question about a word only the
    others use is no more answered than one about a word no transcript uses."""
    corpus = engine.index.corpus
    names = {name for name, i in engine._sources.items() if i in sources}
    vocabulary = set(engine._speaker_terms)
    known: set[str] = set()
    for d in corpus.documents:
        if d.source in names:
            for text in (corpus.document_text(d), d.question or ""):
                vocabulary.update(tokenize(text))
                known.update(content_words(text))
    whole = engine._coverage
    among = np.array([w in known for w in engine._ranked_words[:len(whole.vectors)]], bool)
    coverage = Coverage(frozenset(known), whole.vectors, whole.embedder, whole.ignore, among,
                        whole._cache, whole._lock)
    return Scope(frozenset(vocabulary), coverage,
                 texts_language(corpus.texts[n] for n in corpus.texts if n in names))


def texts_language(texts: Iterable[str]) -> str:
    """The language of some transcripts, read from the start of the first twenty."""
    return language(" ".join(t[:5_000] for t in itertools.islice(texts, 20)))


def distinctness(passages: np.ndarray, *, step: int = 16_384) -> np.ndarray:
    """Each unit row's cosine distance from the mean of all the other rows.

    A hub (a passage near every other one) sits close to that mean; ranking by similarity
    alone puts it first for many questions it does not answer. Linear in the corpus, so it is
    computed on load rather than stored in the index.
    """
    n = len(passages)
    out = np.ones(n, dtype=np.float32)
    if n < 2:
        return out
    total = passages.sum(axis=0, dtype=np.float64)
    for lo in range(0, n, step):
        block = np.asarray(passages[lo:lo + step], dtype=np.float64)
        rest = total[None, :] - block
        norms = np.linalg.norm(rest, axis=1)
        cos = np.einsum("ij,ij->i", block, rest) / np.maximum(norms, 1e-12)
        out[lo:lo + step] = 1.0 - cos
    return out


def distinct_of(engine: Engine, name: str) -> np.ndarray:
    """A model's passage distinctness, computed once, when its signals are first read (a model
    the weights leave out is read only by a refit)."""
    found = engine._distinct.get(name)
    if found is None:
        found = engine._distinct[name] = distinctness(engine.index.vectors[name].passages)
    return found


def closest_clause(clauses: np.ndarray, rows: np.ndarray, ids: np.ndarray, query: np.ndarray,
                   passage: np.ndarray) -> np.ndarray:
    """For passages `ids`, the best cosine to the query among each one's clauses and itself.

    `rows[i]:rows[i + 1]` are passage i's clause rows; only the candidates' rows are read.
    """
    lo, hi = rows[ids], rows[ids + 1]
    counts = hi - lo
    best = passage.copy()
    has = counts > 0
    if not has.any():
        return best
    starts = np.repeat(lo[has] - np.cumsum(counts[has]) + counts[has], counts[has])
    picked = starts + np.arange(int(counts[has].sum()))
    sims = clauses[picked].astype(np.float32) @ query
    firsts = np.concatenate([[0], np.cumsum(counts[has])[:-1]])
    best[has] = np.maximum(best[has], np.maximum.reduceat(sims, firsts))
    return best


def open_engine(index: Index, *, weights: Weights = Weights(), k1: float = K1,
                embedders: dict[str, Embedder] | None = None,
                cache_dir: Path | None = None) -> Engine:
    """An engine over a loaded index, with each of its models as it was built: those the
    weights read loaded now, any other when first asked for vectors (`Deferred`)."""
    embedders = dict(embedders or {})
    backend = index.manifest.get("settings", {}).get("backend", DEFAULT_BACKEND)
    read = models_read(weights, [entry["name"] for entry in index.manifest["models"]])
    if weights.tiebreak:  # loaded now, though a question is embedded with it only when asked
        read += (E5_MODEL,)
    for entry in index.manifest["models"]:
        name = entry["name"]
        if name in embedders:
            continue
        load = partial(load_embedder, name, backend=backend, cache_dir=cache_dir)
        embedders[name] = load() if name in read else Deferred(name, int(entry["dim"]), load)
    return Engine(index, embedders, weights, k1)


def read_question(engine: Engine, query: str) -> str:
    """The query with the transcripts' spelling of its words (`respell`), kept for the next
    reads of it: embedding, ranking and abstention each read it."""
    read = engine._read.get(query)
    if read is None:
        if len(engine._read) >= READ_CACHE:
            engine._read.clear()
        read = engine._read[query] = respell(query, engine._spelling)
    return read


READ_CACHE = 4096


def embed_queries(engine: Engine, queries: list[str], *,
                  every_model: bool = False) -> list[dict[str, np.ndarray]]:
    """Each query's vector under each model the weights read (`every_model`: each model of
    the index, for refitting the weights), one batch per model (cheaper than one by one).

    The models run side by side, one thread each: each runs its own work on one core, and
    encoding the question is most of what a warm answer costs.
    The multilingual encoder also embeds the questions' words that term coverage has no
    vector for yet, in the same batch (one call costs more than a few words more).
    """
    names = list(engine.index.vectors)
    if not every_model:
        names = list(models_read(engine.weights, names))
    texts = [read_question(engine, q) for q in queries]  # as the encoders read text
    words = engine._coverage.missing(texts) if MULTILINGUAL_MODEL in names else []

    def run(name):
        embedder = engine.embedders[name]
        if name != MULTILINGUAL_MODEL or not words:
            return embed_questions(embedder, texts)
        return embedder.embed_batch(texts + words)

    if len(names) < 2:
        outputs = [run(n) for n in names]
    else:
        outputs = list(_threads().map(run, names))
    matrices = dict(zip(names, outputs, strict=True))
    if words:
        engine._coverage.store(words, matrices[MULTILINGUAL_MODEL][len(texts):])
    return [{name: m[i] for name, m in matrices.items()} for i in range(len(queries))]


def top_ids(scores: np.ndarray, count: int) -> np.ndarray:
    """Ids of the (at most) `count` highest positive scores, in no order: linear time, and
    only over the documents that score at all, since a full sort dominates at a million."""
    hits = np.flatnonzero(scores > 0)
    if len(hits) <= count:
        return hits
    return hits[np.argpartition(-scores[hits], count - 1)[:count]]


@cache
def _threads() -> ThreadPoolExecutor:
    """Two long-lived threads for a question's independent steps (the embedding models,
    the FAISS searches): a fixed few, as every thread that runs a model keeps its buffers."""
    return named_pool(2, "rag-step")


def nearest(searches: list[tuple[object, np.ndarray]], count: int,
            meanwhile: Callable[[], T]) -> tuple[list[np.ndarray], T]:
    """Each (FAISS index, query vector)'s `count` nearest ids, and what `meanwhile()` returns.

    On a large corpus the graphs are searched on the step threads (FAISS releases the GIL)
    while this thread runs `meanwhile`, the lexical pass over every passage: at a million
    passages the two cost about the same, so neither waits for the other."""
    def one(index, q):
        return index.search(q[None, :], count)[1][0]

    if not searches or searches[0][0].ntotal < 1000:
        return [one(index, q) for index, q in searches], meanwhile()
    pending = [_threads().submit(one, index, q) for index, q in searches]
    side = meanwhile()
    return [p.result() for p in pending], side


def candidates(engine: Engine, lexical_of: Callable[[], np.ndarray],
               qvecs: dict[str, np.ndarray],
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The passages worth scoring in full, and the lexical scores of every passage
    (`lexical_of()`, computed while the indexes are searched).

    Candidates are all of a small corpus (or selection), else the union of the lexical and
    each model's nearest ones. Within a selection of up to FLAT_LIMIT passages the nearest are
    found exactly, as the index itself would below that size; past it, the index is searched
    deeper and what lies outside the selection dropped.
    """
    count = engine.weights.candidates
    n = len(engine._doc_of)
    chosen = None if allowed is None else np.flatnonzero(allowed)  # no list of a whole corpus
    size = n if chosen is None else len(chosen)
    if size <= count * 4:
        return (np.arange(n) if chosen is None else chosen), lexical_of()
    if chosen is not None and size <= FLAT_LIMIT:
        lexical = lexical_of()
        return nearest_within(engine, chosen, lexical, qvecs, count), lexical
    depth = min(n, count * -(-n // size), count * 40)
    searches = [(vec.faiss_index, qvecs[name]) for name, vec in engine.index.vectors.items()
                if name in qvecs]
    found, lexical = nearest(searches, depth, lexical_of)
    within = lexical if allowed is None else np.where(allowed, lexical, 0.0)
    pool = set(top_ids(within, count).tolist())
    for ids in found:
        pool.update(int(i) for i in ids if i >= 0)
    ids = np.array(sorted(pool), dtype=np.int64)
    if allowed is None:
        return ids, lexical
    ids = ids[allowed[ids]]
    if len(ids) < count:  # the selection lies away from the question's neighbours
        ids = np.union1d(ids, nearest_within(engine, chosen, within, qvecs, count))
    return ids, lexical


def nearest_within(engine: Engine, chosen: np.ndarray, lexical: np.ndarray,
                   qvecs: dict[str, np.ndarray], count: int) -> np.ndarray:
    """The lexical and each model's `count` best among the `chosen` passages, found exactly."""
    return np.unique(np.concatenate([chosen[top_ids(lexical[chosen], count)]] + [
        chosen[top_ids(vec.passages[chosen] @ qvecs[name] + 2.0, count)]
        for name, vec in engine.index.vectors.items() if name in qvecs]))


def signal_matrix(engine: Engine, query: str, qvecs: dict[str, np.ndarray] | None = None,
                  allowed: np.ndarray | None = None, *, with_overlap: bool | None = None,
                  with_titled: bool | None = None,
                  every_model: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Candidate passage ids and their raw signals (rows) by name (columns).

    `qvecs`: the query's vector under each model whose signals are wanted (by default those
    the weights read, or with `every_model` every model of the index, as a refit wants).
    `allowed`: a mask of the passages that may be cited (`select_sources`), or None for all.
    `with_overlap`: add the word-for-word overlap signals (rag/overlap.py), and
    `with_titled` BM25 over each document with its question (`titled`); by default each only
    when the engine's weights use it, as they cost a pass over the candidates' text and a
    table of their own.
    """
    bm25, ignore = engine._bm25, engine._speaker_terms
    query = read_question(engine, query)
    if qvecs is None:
        qvecs = embed_queries(engine, [query], every_model=every_model)[0]
    # every passage's lexical score: its best passages join the candidates
    ids, lexical = candidates(engine, lambda: bm25["passage"].scores(query, ignore=ignore),
                              qvecs, allowed)
    docs = engine._doc_of[ids]
    columns, names = [], []
    for name, vec in engine.index.vectors.items():
        if name not in qvecs:  # a model the weights do not read
            continue
        q = qvecs[name]
        kind = KINDS.get(name, "dense")
        own = vec.passages[ids] @ q
        columns += [own, vec.documents[docs] @ q, vec.questions[docs] @ q,
                    vec.pairs[ids] @ q, distinct_of(engine, name)[ids]]
        names += [f"{kind}.{s}" for s in SIGNALS] + [f"{kind}.distinct"]
        if name in engine._clause_rows:
            columns.append(closest_clause(vec.clauses, engine._clause_rows[name], ids, q, own))
            names.append(f"{kind}.clause")
    columns += [lexical[ids], bm25["answer"].scores_of(query, docs, ignore),
                bm25["question"].scores_of(query, docs, ignore),
                bm25["pair"].scores_of(query, ids, ignore)]
    names += [f"lexical.{s}" for s in SIGNALS]
    columns.append(engine._grams.scores(query, ids, ignore=engine._speaker_grams))
    names.append("grams.pair")
    if engine.weights.uses("overlap.") if with_overlap is None else with_overlap:
        columns += list(document_overlap(engine, query, docs).T)
        names += [f"overlap.{s}" for s in OVERLAP]
    if engine.weights.uses("lexical.titled") if with_titled is None else with_titled:
        columns.append(titled(engine).scores_of(query, docs, ignore))
        names.append("lexical.titled")
    return ids, np.stack(columns, axis=1).astype(np.float32), names


def document_overlap(engine: Engine, query: str, docs: np.ndarray) -> np.ndarray:
    """The overlap signals of each of `docs` (a document per candidate passage, repeats
    allowed), read over the document with its interviewer question, as `lexical.answer` reads
    the answer: which of the answers repeats the question's words."""
    answers = engine._bm25["answer"]
    terms = query_terms(query, answers.idf, engine._speaker_words)
    unique, where = np.unique(docs, return_inverse=True)
    kept, corpus = engine._spellings, engine.index.corpus
    texts = []
    for d in unique.tolist():
        text = kept.get(d)
        if text is None:
            doc = corpus.documents[d]
            text = spelling(f"{doc.question or ''} {corpus.document_text(doc)}")
            if len(kept) >= SPELLINGS_KEPT:
                kept.clear()
            kept[d] = text
        texts.append(text)
    return overlap(terms, texts)[where]


def query_features(engine: Engine, query: str, scope: Scope | None = None) -> dict[str, float]:
    """What the question asks about that the corpus never mentions.

    A question naming a country, person or topic absent from every transcript is rarely
    answered there; the share of its names (capitalised words past the first) and of its
    terms missing from the corpus vocabulary feeds the abstention rule. Missing terms say
    little when the question is in another language than the transcripts (English about
    French text: every word is missing), so they count again on their own for a question in
    the transcripts' language, beside whether it was asked across languages. Term coverage
    (rag/coverage.py) asks the same across languages. `scope`: the transcripts the question
    may cite (`select_sources`), by default all of them.
    """
    scope = scope or engine._scope
    query = read_question(engine, query)
    named = names(query)
    missing = [w for w in named if not set(tokenize(w)) & scope.vocabulary]
    terms = tokenize(query)
    unknown = [t for t in terms if t not in scope.vocabulary]
    unknown_share = len(unknown) / len(terms) if terms else 1.0
    across = float(language(query) != scope.language)
    return {"query.unknown_names": len(missing) / len(named) if named else 0.0,
            "query.unknown_terms": unknown_share,
            "query.cross_lingual": across,
            "query.unknown_terms_same": unknown_share * (1.0 - across),
            "query.term_coverage": scope.coverage.score(query)}


def judged(query: str, own: str | None) -> str:
    """The text whose words decide whether a question is answered at all: a follow-up's own
    words, when it has any besides the question it follows (`_ranked`)."""
    return own if own is not None and tokenize(own) else query


def fuse(signals: np.ndarray, names: list[str], weights: Weights) -> np.ndarray:
    """Weighted sum of signals, weights normalised to sum to one so the scale stays fixed."""
    w = weights.vector(names)
    return signals @ (w / max(float(w.sum()), 1e-9))


def runner_up(answers: np.ndarray, scores: np.ndarray) -> tuple[int, int | None]:
    """The best candidate, and the best one from another answer (None when all come from one).
    `answers`: which answer each candidate belongs to."""
    best = int(np.argmax(scores))
    others = np.flatnonzero(answers != answers[best])
    return best, int(others[np.argmax(scores[others])]) if len(others) else None


def lead(answers: np.ndarray, scores: np.ndarray) -> float:
    """How far the best answer's fused score lies above the next answer's, up to `LEAD_CAP`.
    The abstention margin says whether the interview answers a question at all; the lead
    says whether the fusion could tell which answer does, and a narrow one is right far less
    often (docs/quality.md, "Confidence")."""
    if not len(scores):
        return 0.0
    best, second = runner_up(answers, scores)
    return LEAD_CAP if second is None else min(float(scores[best] - scores[second]), LEAD_CAP)


def close_call(engine: Engine, ids: np.ndarray, scores: np.ndarray) -> tuple[int, int] | None:
    """The best candidate and the best one from another answer, when the two answers' fused
    scores lie within `weights.tiebreak`; None when one answer stands clear (or alone)."""
    if not engine.weights.tiebreak or not len(ids):
        return None
    best, second = runner_up(engine._doc_of[ids], scores)
    if second is None:
        return None
    return (best, second) if scores[best] - scores[second] < engine.weights.tiebreak else None


def settle_close_call(engine: Engine, query: str, ids: np.ndarray, scores: np.ndarray,
                      qvecs: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The fused scores, with the second answer's best passage moved to the top when the best
    two answers lie within `weights.tiebreak` and multilingual-e5-small prefers the second.

    A narrow margin is where the fused signals know least which answer is asked about, and
    e5, trained on questions with the passages that answer them, reads a question's intent
    where the others read its words: over random halves of the gold set, and on questions
    written after the fit, it chooses better there than the fusion does, though as one more
    fused signal it gains nothing (docs/quality.md). It costs an e5 pass only on such
    questions. Its opinion of an answer: the mean of its cosines to the answer's best
    candidate passage, the answer, its interviewer question, and the best passage read with
    that question.
    """
    vectors = engine.index.vectors.get(E5_MODEL)
    pair = close_call(engine, ids, scores) if vectors is not None else None
    if pair is None:
        return scores
    best, second = pair
    docs = engine._doc_of[ids]
    q = (qvecs or {}).get(E5_MODEL)
    if q is None:
        q = embed_questions(engine.embedders[E5_MODEL], [read_question(engine, query)])[0]

    def opinion(doc: int) -> float:
        rows = ids[docs == doc]
        return float(np.mean([(vectors.passages[rows] @ q).max(), vectors.documents[doc] @ q,
                              vectors.questions[doc] @ q, (vectors.pairs[rows] @ q).max()]))

    if opinion(int(docs[second])) <= opinion(int(docs[best])):
        return scores
    settled = scores.copy()
    settled[second] = scores[best] + 1e-6  # first, and the scores still fall down the list
    return settled


def confidence(signals: np.ndarray, fused: float, names: list[str], query: dict[str, float],
               weights: Weights) -> float:
    """The abstention rule's margin for one passage: positive means it answers."""
    w = weights.vector(names + ["fused"] + list(query), "abstain")
    x = np.concatenate([signals, [fused], list(query.values())])
    return float(x @ w + weights.abstain_bias)


def certainty(margin: float, weights: Weights, lead: float = LEAD_CAP) -> float:
    """The abstention rule's margin, and for an answer its answer's lead over the next
    (`lead`), as a probability that the passage comes from the answer asked about: what a
    reader can weigh, where the margin is only a sign. The lead counts only for an answer, so
    every answer given is surer than every abstention."""
    slope, lead_slope, intercept = weights.calibration
    told = lead_slope * min(lead, LEAD_CAP) if margin > 0 else 0.0
    return float(1.0 / (1.0 + np.exp(-(slope * margin + told + intercept))))


def search(engine: Engine, query: str, *, k: int = 5,
           qvecs: dict[str, np.ndarray] | None = None,
           sources: Iterable[str] | None = None, own: str | None = None) -> list[Hit]:
    """The k best passages for a query, best first, with their fused scores.

    `qvecs`: the query's vectors when already computed (see `search_many`).
    `sources`: only these transcripts, by the `source` their citations give (default all).
    `own`: when `query` is a follow-up searched with the question before it, the follow-up's
    own words (see `_ranked`).
    """
    query = _check_request(query, k)
    own = _check_request(own, k) if own is not None else None
    return _ranked(engine, query, k, qvecs, select_sources(engine, sources), own)


def _check_request(query: object, k: object) -> str:
    """The query as the encoders can take it (a lone surrogate, which JSON escapes allow,
    as "?"), or a QuestionError for what would otherwise fail deep inside, or quietly slice
    wrong."""
    if not isinstance(query, str):
        raise QuestionError("the query must be text")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QuestionError("k must be a whole number from 1")
    return query.encode("utf-8", "replace").decode("utf-8")


def search_many(engine: Engine, queries: list[str], *, k: int = 5,
                sources: list[Iterable[str] | None] | None = None,
                own: list[str | None] | None = None) -> list[list[Hit]]:
    """`search` for several queries, embedding them together: what a busy server wants.

    `sources`: for each query, the transcripts it may cite (None: all).
    `own`: for each query, the follow-up's own words when it is one (see `search`), or None.
    """
    if isinstance(queries, str):
        raise QuestionError("search_many takes a list of queries; use search for one")
    queries = [_check_request(query, k) for query in queries]
    own = [_check_request(o, k) if o is not None else None for o in own] \
        if own is not None else [None] * len(queries)
    masks = [select_sources(engine, s) for s in sources] if sources is not None else \
        [None] * len(queries)  # an unknown transcript fails before any work
    if not engine.index.corpus.passages:
        return [[] for _ in queries]
    vectors = embed_queries(engine, queries)
    return [_ranked(engine, q, k, v, m, o)
            for q, v, m, o in zip(queries, vectors, masks, own, strict=True)]


def _ranked(engine: Engine, query: str, k: int, qvecs: dict[str, np.ndarray] | None,
            selection: Selection | None, own: str | None = None) -> list[Hit]:
    """The k best passages, each with its fused score and the abstention rule's margin.

    A follow-up searched with the question before it (`own`: its own words) is judged on its
    own words, when it has any, for whether it is answered at all (`judged`): "Et sur la
    Chine ?" after a question on the Sahel names nothing the interview knows, though the two
    questions together mostly do. A bare "Pourquoi ?" is judged with the question it follows.
    """
    corpus = engine.index.corpus
    if not corpus.passages:
        return []
    ids, signals, names = signal_matrix(engine, query, qvecs,
                                        selection.mask if selection else None)
    if not len(ids):
        return []
    fused = fuse(signals, names, engine.weights)
    told = lead(engine._doc_of[ids], fused)  # how clearly the fusion told the answers apart
    scores = settle_close_call(engine, query, ids, fused, qvecs)
    query_info = query_features(engine, judged(query, own),
                                selection.scope if selection else None)
    order = np.argsort(-scores, kind="stable")[:k]
    hits = []
    for i in order:
        passage = corpus.passages[int(ids[i])]
        hits.append(Hit(passage, corpus.documents[passage.doc], float(scores[i]),
                        confidence(signals[i], float(scores[i]), names, query_info,
                                   engine.weights),
                        dict(zip(names, signals[i].tolist(), strict=True)), told))
    return hits
