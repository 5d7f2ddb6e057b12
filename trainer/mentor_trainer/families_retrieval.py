"""The retrieval task family: questions about a generated fictional world, answered with `search`.

The MENTOR paper's third domain is retrieval-augmented QA. A model can answer questions about
real places from memory, which hides whether it searched; so this family writes its own world: a
fixed corpus of towns, people and workshops with made-up names and attributes (a town's founding
year and river, a person's trade and birthplace, a workshop's seat, founder and product), one
document each, cross-referencing each other. The corpus depends on nothing but `CORPUS_SEED`, so
every process that needs it (data generation, evaluation, the reward's tool execution) builds the
same one, and `write_corpus` exports it for `mentor-reward index build` and the service.

Questions come in two groups, each an out-of-domain split of the benchmark once enabled:

- `retrieval` → split `ood_retrieval`: one search for the entity the question names, e.g.
  "In what year was the town of Brelmor founded?";
- `retrieval_2hop` → split `ood_retrieval_2hop`: two chained searches, the second for an entity
  that only the first result names, e.g. "In what year was the birthplace of Ostrava Kell founded?".

The programmatic teacher issues real `search` calls through the `retrieval` toolset, finds the
entity's document among the hits by its title, and reads the answer *from the retrieved text*
(a draw whose document is not retrieved is dropped and redrawn), so the trace's results are what
the tool returned and the answer is what the documents say. Answers are words or years, judged by
the engine's QA judge: `RETRIEVAL_SPEC` (the `mentor` preset with `judge.mode: qa_em`) for
training, and `EVAL_OVERRIDES` (the same outcome judge on top of the evaluation preset) when
`evaluate` scores rows of this toolset.

Nothing here is registered on import: `enable()` registers the `retrieval` toolset (an in-memory
index) and adds the groups to `FAMILIES`, after which `benchmark.split_groups()` lists both splits
(`mentor-train experiment` always does this; `mentor-train make-data --retrieval` on request).
`write_index(folder)` exports the corpus, builds its index as `mentor-reward index build` does,
and writes the toolsets file a service loads to serve the same tool. `retrieval_splits()`
generates one-hop train/test splits for an experiment that trains on retrieval itself.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .families import FAMILIES, Builder, GenerationError, Teacher, family

__all__ = [
    "CORPUS_SEED",
    "EVAL_OVERRIDES",
    "MULTI_HOP",
    "ONE_HOP",
    "RETRIEVAL",
    "RETRIEVAL_SPEC",
    "World",
    "disable",
    "enable",
    "retrieval_splits",
    "retrieval_toolset",
    "serve_retrieval",
    "verify_retrieval_row",
    "world",
    "write_corpus",
    "write_index",
]

RETRIEVAL = "retrieval"
"""The toolset's name."""
ONE_HOP = "retrieval"
"""The one-search group (named after its toolset, as every other domain's group): split `ood_retrieval`."""
MULTI_HOP = "retrieval_2hop"
"""The two-search group: split `ood_retrieval_2hop`."""
TOOLSET_DESCRIPTION = "Search a small encyclopedia of a fictional world."

CORPUS_SEED = 2510
_TOWNS, _PEOPLE, _WORKSHOPS = 240, 480, 240

RETRIEVAL_SPEC: dict[str, Any] = {
    "name": "mentor-qa",
    "description": "MENTOR with a QA answer judge (SQuAD exact match) for the retrieval family.",
    "toolset": RETRIEVAL,
    "gates": [
        {"when": "not_finished", "reward": 0.0},
        {"when": "no_answer", "reward": 0.1},
        {"when": "no_teacher_tools", "reward": 0.1},
    ],
    "components": {
        "outcome": {"weight": 0.7, "options": {"answer_from": "boxed_or_final", "judge": {"mode": "qa_em"}}},
        "tool_names": {"weight": 0.3, "wrong_answer_scale": 0.2, "options": {"mode": "exact_set"}},
        "no_hallucination": {"weight": 0.1},
    },
}
"""The `mentor` preset's weights and gates with the QA judge and this family's toolset."""

EVAL_OVERRIDES: dict[str, dict[str, Any]] = {
    RETRIEVAL: {"components": {"outcome": {"options": RETRIEVAL_SPEC["components"]["outcome"]["options"]}}}
}
"""Scoring overrides by toolset for evaluation: rows of this family keep the evaluation preset's
components and weights, but their outcome is the family's QA judge (answers are words, not numbers)."""


# ---------------------------------------------------------------------------- the world
_ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "th",
    "v",
    "w",
    "z",
]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
_CODAS = ["l", "m", "n", "r", "s", "th", "nd", "rk", "st", "ll"]
_REGIONS = ("Amber", "Cinder", "Frost", "Hollow", "Juniper", "Marrow", "Pale", "Thistle")
_SIZES = ("small", "busy", "quiet", "walled", "market")
_PRODUCTS = ("lanterns", "barrels", "rope", "glassware", "saddles", "clocks", "maps", "bells", "looms", "kites")
_TRADES = ("cartographer", "glassblower", "brewer", "weaver", "astronomer", "stonemason", "luthier", "bookbinder")
_KINDS = ("family", "guild", "river", "hill")


@dataclass(frozen=True, slots=True)
class Town:
    name: str
    region: str
    river: str
    founded: int
    product: str


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    trade: str
    born_in: str
    born: int


@dataclass(frozen=True, slots=True)
class Workshop:
    name: str
    kind: str
    seat: str
    founder: str
    founded: int
    product: str


@dataclass(frozen=True, slots=True)
class World:
    """The fictional world: entities by name, and the corpus of one document each."""

    towns: dict[str, Town]
    people: dict[str, Person]
    workshops: dict[str, Workshop]
    documents: list[dict[str, str]]


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def _unique(rng: random.Random, taken: set[str], make: Callable[[], str]) -> str:
    while True:
        name = make()
        if name not in taken and name.lower() not in _COMMON:
            taken.add(name)
            return name


_COMMON = {word for words in (_REGIONS, _SIZES, _PRODUCTS, _TRADES, _KINDS) for word in words}


def _town_text(t: Town) -> str:
    size = _SIZES[t.founded % len(_SIZES)]
    return (
        f"{t.name} is a {size} town in the {t.region} valley, on the banks of the river {t.river}. "
        f"It was founded in {t.founded}. {t.name} is known for its {t.product}."
    )


def _person_text(p: Person) -> str:
    article = "an" if p.trade[0] in "aeiou" else "a"
    return f"{p.name} was {article} {p.trade} born in {p.born_in} in {p.born}."


def _workshop_text(w: Workshop) -> str:
    return (
        f"The {w.name} is a {w.kind} workshop with its seat in {w.seat}, founded by {w.founder} "
        f"in {w.founded}. It makes {w.product}."
    )


@functools.cache
def world() -> World:
    """The world of `CORPUS_SEED` (built once per process)."""
    rng = random.Random(CORPUS_SEED)
    taken: set[str] = set()
    towns: dict[str, Town] = {}
    for _ in range(_TOWNS):
        name = _unique(rng, taken, lambda: _word(rng, rng.randint(1, 2)))
        river = _unique(rng, taken, lambda: _word(rng, 1))
        towns[name] = Town(name, rng.choice(_REGIONS), river, rng.randint(1100, 1890), rng.choice(_PRODUCTS))
    town_names = list(towns)
    people: dict[str, Person] = {}
    for _ in range(_PEOPLE):
        name = _unique(rng, taken, lambda: f"{_word(rng, rng.randint(1, 2))} {_word(rng, 1)}")
        people[name] = Person(name, rng.choice(_TRADES), rng.choice(town_names), rng.randint(1500, 1900))
    person_names = list(people)
    workshops: dict[str, Workshop] = {}
    for _ in range(_WORKSHOPS):
        name = _unique(rng, taken, lambda: f"{_word(rng, 2)} Works")
        founder = rng.choice(person_names)
        workshops[name] = Workshop(
            name,
            rng.choice(_KINDS),
            rng.choice(town_names),
            founder,
            people[founder].born + rng.randint(20, 50),
            rng.choice(_PRODUCTS),
        )
    documents = (
        [{"id": f"town-{i:04d}", "title": t.name, "text": _town_text(t)} for i, t in enumerate(towns.values())]
        + [{"id": f"person-{i:04d}", "title": p.name, "text": _person_text(p)} for i, p in enumerate(people.values())]
        + [
            {"id": f"works-{i:04d}", "title": w.name, "text": _workshop_text(w)}
            for i, w in enumerate(workshops.values())
        ]
    )
    return World(towns, people, workshops, documents)


def write_corpus(path: str | Path) -> int:
    """Write the corpus as JSONL `{"id", "title", "text"}` (for `mentor-reward index build`); returns the count."""
    documents = world().documents
    Path(path).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
    return len(documents)


@functools.cache
def retrieval_toolset() -> Any:
    """The `retrieval` toolset: the `search` tool over the world's corpus, in memory."""
    from mentor_server.toolsets.search import search_toolset
    from mentor_server.toolsets.search_index import Document, SearchIndex

    index = SearchIndex.in_memory((Document(**d) for d in world().documents), source="the generated world")
    return search_toolset(index, name=RETRIEVAL, description=TOOLSET_DESCRIPTION)


def write_index(folder: str | Path) -> Path:
    """Export the corpus, index it, and describe the toolset for a service; returns the toolsets file.

    Writes `corpus.jsonl`, `index/` (`mentor-reward index build`'s folder, rebuilt when present)
    and `toolsets.json`, which names the `retrieval` toolset over that index: give it to a service
    as `MENTOR_TOOLSETS=FOLDER/toolsets.json` (or the `toolsets:` list of its settings file).
    """
    import shutil

    from mentor_server.toolsets.search_index import MANIFEST, build_index

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_corpus(folder / "corpus.jsonl")
    index = folder / "index"
    if index.exists():
        if not (index / MANIFEST).is_file():  # never delete a folder this function did not write
            raise FileExistsError(f"{index} exists and is not a search index; remove it or choose another folder")
        shutil.rmtree(index)
    build_index(folder / "corpus.jsonl", index, threads=1)  # one thread: one segment layout on every machine
    entry = {"name": RETRIEVAL, "description": TOOLSET_DESCRIPTION, "search": {"index": "index"}}
    toolsets = folder / "toolsets.json"
    toolsets.write_text(json.dumps({"toolsets": [entry]}, indent=2) + "\n", encoding="utf-8")
    return toolsets


# ---------------------------------------------------------------------------- the teacher's reading
_FACTS: dict[str, re.Pattern[str]] = {
    "founded": re.compile(r"(?:It was founded in|founded by .+? in) (\d{4})\."),
    "river": re.compile(r"on the banks of the river (\w+)\."),
    "trade": re.compile(r" was an? (\w+) born in "),
    "born_in": re.compile(r" born in (\w+) in \d{4}\."),
    "seat": re.compile(r"with its seat in (\w+),"),
    "founder": re.compile(r"founded by (\w+ \w+) in \d{4}\."),
    "product": re.compile(r"(?:It makes|is known for its) (\w+)\."),
}


def _look_up(t: Teacher, query: str, title: str, fact: str) -> str:
    """Search, find the document titled `title` among the hits, and read `fact` from its text."""
    hits = t.call("search", query)
    for hit in hits:
        if hit["title"] == title:
            match = _FACTS[fact].search(hit["text"])
            if match is None:
                raise GenerationError(f"the document {title!r} does not state its {fact}")
            return match.group(1)
    raise GenerationError(f"searching {query!r} did not retrieve {title!r}")


def _answer(t: Teacher, value: str, truth: Any) -> None:
    if value != str(truth):  # the corpus and the world disagree: a bug here, never a row
        raise AssertionError(f"read {value!r} from the documents, the world says {truth!r}")
    t.answer = value


# ---------------------------------------------------------------------------- one hop
def _town_founded(rng: random.Random, t: Teacher) -> str:
    town = rng.choice(list(world().towns.values()))
    _answer(t, _look_up(t, f"{town.name} founded", town.name, "founded"), town.founded)
    return f"In what year was the town of {town.name} founded?"


def _town_river(rng: random.Random, t: Teacher) -> str:
    town = rng.choice(list(world().towns.values()))
    _answer(t, _look_up(t, f"{town.name} river", town.name, "river"), town.river)
    return f"Which river runs through {town.name}?"


def _person_trade(rng: random.Random, t: Teacher) -> str:
    person = rng.choice(list(world().people.values()))
    _answer(t, _look_up(t, person.name, person.name, "trade"), person.trade)
    return f"What was {person.name}'s trade?"


def _person_birthplace(rng: random.Random, t: Teacher) -> str:
    person = rng.choice(list(world().people.values()))
    _answer(t, _look_up(t, f"{person.name} born", person.name, "born_in"), person.born_in)
    return f"In which town was {person.name} born?"


def _workshop_product(rng: random.Random, t: Teacher) -> str:
    works = rng.choice(list(world().workshops.values()))
    _answer(t, _look_up(t, works.name, works.name, "product"), works.product)
    return f"What does the {works.name} make?"


def _workshop_founder(rng: random.Random, t: Teacher) -> str:
    works = rng.choice(list(world().workshops.values()))
    _answer(t, _look_up(t, f"{works.name} founded by", works.name, "founder"), works.founder)
    return f"Who founded the {works.name}?"


# ---------------------------------------------------------------------------- two hops
def _birthplace_founded(rng: random.Random, t: Teacher) -> str:
    person = rng.choice(list(world().people.values()))
    town = _look_up(t, f"{person.name} born", person.name, "born_in")
    _answer(t, _look_up(t, f"{town} founded", town, "founded"), world().towns[town].founded)
    return f"In what year was the birthplace of {person.name} founded?"


def _birthplace_river(rng: random.Random, t: Teacher) -> str:
    person = rng.choice(list(world().people.values()))
    town = _look_up(t, f"{person.name} born", person.name, "born_in")
    _answer(t, _look_up(t, f"{town} river", town, "river"), world().towns[town].river)
    return f"Which river runs through the town where {person.name} was born?"


def _founder_trade(rng: random.Random, t: Teacher) -> str:
    works = rng.choice(list(world().workshops.values()))
    founder = _look_up(t, f"{works.name} founded by", works.name, "founder")
    _answer(t, _look_up(t, founder, founder, "trade"), world().people[founder].trade)
    return f"What was the trade of the person who founded the {works.name}?"


def _seat_founded(rng: random.Random, t: Teacher) -> str:
    works = rng.choice(list(world().workshops.values()))
    seat = _look_up(t, f"{works.name} seat", works.name, "seat")
    _answer(t, _look_up(t, f"{seat} founded", seat, "founded"), world().towns[seat].founded)
    return f"In what year was the town where the {works.name} has its seat founded?"


_GROUPS: dict[str, tuple[Builder, ...]] = {
    ONE_HOP: (_town_founded, _town_river, _person_trade, _person_birthplace, _workshop_product, _workshop_founder),
    MULTI_HOP: (_birthplace_founded, _birthplace_river, _founder_trade, _seat_founded),
}


def enable() -> None:
    """Register the `retrieval` toolset and the retrieval families (idempotent).

    Afterwards `benchmark.split_groups()` includes `ood_retrieval` and `ood_retrieval_2hop`. Not
    done on import, so the benchmark's default splits stay as they are unless a caller opts in.
    """
    from mentor_server.toolsets import register_toolset

    register_toolset(retrieval_toolset(), replace=True)
    if ONE_HOP in FAMILIES:
        return
    for group, builders in _GROUPS.items():
        for build in builders:
            family(group, RETRIEVAL, "search")(build)


def disable() -> None:
    """Undo `enable()`: the benchmark's splits are the default ones again."""
    from mentor_server.toolsets import unregister_toolset

    unregister_toolset(RETRIEVAL)
    for group in (ONE_HOP, MULTI_HOP):
        FAMILIES.pop(group, None)


def local_toolset_files(data_dir: str | Path | None, local: bool) -> list[Path]:
    """The toolsets file `make-data --retrieval` wrote into `data_dir`, for in-process tools
    (`local`) that must serve the retrieval splits' search index; none otherwise (a service is
    given it with MENTOR_TOOLSETS when it starts)."""
    if not local or data_dir is None:
        return []
    path = Path(data_dir) / "retrieval" / "toolsets.json"
    return [path] if path.is_file() else []


def serve_retrieval(runner: Any, toolsets: set[str]) -> None:
    """Check, before any rollout, that `runner` serves the `retrieval` toolset when `toolsets` (those
    of the rows about to be rolled out) include it; otherwise raise with the way to provide it (each
    call would fail with the same error)."""
    if RETRIEVAL not in toolsets:
        return
    served = {info.name for info in runner.backend.toolsets().toolsets}
    if RETRIEVAL in served:
        return
    where = "this process" if runner.local else f"the service at {runner.base_url}"
    provide = (
        "ToolExecutor(local=True, toolset_files=[DATA/retrieval/toolsets.json]); `mentor-train eval --local` "
        "passes that file when the data folder has it"
        if runner.local
        else "start the service with MENTOR_TOOLSETS=DATA/retrieval/toolsets.json"
    )
    raise RuntimeError(
        f"the rows use the {RETRIEVAL!r} toolset, which {where} does not serve (it serves "
        f"{', '.join(sorted(served))}); `mentor-train make-data --retrieval` writes DATA/retrieval/toolsets.json: "
        f"{provide}"
    )


# ---------------------------------------------------------------------------- splits and checks
def retrieval_splits(seed: int, train: int, test: int, ood: int) -> dict[str, list[dict[str, Any]]]:
    """`retrieval_train` / `retrieval_test` (one hop) and `ood_retrieval_2hop` (two hops); test rows never
    repeat train's."""
    from .benchmark import generate_split

    enable()
    rows = {"retrieval_train": generate_split("retrieval_train", ONE_HOP, train, seed)}
    seen = {r["prompt"][-1]["content"] for r in rows["retrieval_train"]}
    rows["retrieval_test"] = generate_split("retrieval_test", ONE_HOP, test, seed, exclude=seen)
    rows["ood_retrieval_2hop"] = generate_split("ood_retrieval_2hop", MULTI_HOP, ood, seed)
    return rows


def verify_retrieval_row(row: dict[str, Any]) -> list[str]:
    """Re-run a row's searches: each recorded result must be what the tool returns now, the tool
    messages must show its content, and the answer must appear in the last retrieved documents."""
    enable()
    toolset = retrieval_toolset()
    problems: list[str] = []
    calls = row["reference"]["calls"]
    tool_messages = [m["content"] for m in row["messages"] if m["role"] == "tool"]
    if len(tool_messages) != len(calls):
        problems.append("tool messages and reference calls differ in number")
    for i, call in enumerate(calls):
        execution = toolset.execute(call["name"], call["arguments"])
        if not execution.ok or execution.result != call["result"]:
            problems.append(f"call {i}: the recorded result is not what the tool returns")
        elif i < len(tool_messages) and tool_messages[i] != execution.content:
            problems.append(f"call {i}: the tool message is not the tool's content")
    answer = row["reference"]["answer"]
    if row["ground_truth"] != answer:
        problems.append("ground_truth and the reference answer differ")
    if calls and not any(answer in hit["text"] for hit in calls[-1]["result"]):
        problems.append(f"the answer {answer!r} is not in the last search's documents")
    return problems
