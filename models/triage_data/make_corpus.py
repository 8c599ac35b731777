"""Write the triage training corpus (``corpus.jsonl``) from hand-written fragments.

Run ``python -m models.triage_data.make_corpus`` (``make corpus``). The output is
deterministic (fixed seed) and committed; training reads the file, not this script.

How a complaint is composed: a *situation* (what happened, per category, with
alternatives ``{a|b}``, optional parts ``[...]`` and slots ``$X``), said in a
*register* (a resident on the phone, a grid worker's patrol note, a hotline operator's
summary, a short WeChat message, a written letter), sometimes with a *misleading* clause
(the old people in a pollution complaint, the deposit an employer kept), a *danger*
clause (someone in danger now: the label becomes ``emergency``), an *unrest* clause
(people threatening to gather, petition or block a road: ``high`` and an early
warning), a consultation form (``consultation``), and noise (typos, dialect words,
missing punctuation).

The split is by *template*, not by row: every fifth situation, danger clause, unrest
clause and register is kept for the ``test`` split only, so the held-out figure
measures how well the classifier learned the language rather than the templates.
``valid`` is a random tenth of the rows made from the remaining templates.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from models.triage_data.fragments import (
    CONSULT_FORMS,
    DANGER,
    DIALECT,
    GENERIC,
    LEXICON,
    MISLEADING,
    NEAR_MISSES,
    REGISTERS,
    SITUATIONS,
    SLOTS,
    TYPOS,
    UNREST,
    UNREST_FOR,
)

SEED = 14
HERE = Path(__file__).resolve().parent
OUT = HERE / "corpus.jsonl"
PER_CATEGORY_TRAIN = 360  # rows from the training templates (train + valid)
PER_CATEGORY_TEST = 60  # rows from the held-out templates
LEXICON_SHARE = 0.3  # rows made of the category's words in a generic phrasing
HOLD_OUT_EVERY = 5  # template i is held out for the test split when i % 5 == 4

_ALT = re.compile(r"\{([^{}]*)\}")
_OPT = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"\$([A-Z]+)")


def held_out(index: int) -> bool:
    return index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1


def expand(template: str, rng: random.Random, person: str) -> str:
    """Choose among ``{a|b}``, keep ``[opt]`` half the time, fill ``$SLOT``s; ``$I`` is
    the complainant as the register names them (我, 该居民, 来电人 ...)."""
    text = template
    while True:
        new = _ALT.sub(lambda m: rng.choice(m.group(1).split("|")), text)
        new = _OPT.sub(lambda m: m.group(1) if rng.random() < 0.5 else "", new)
        if new == text:
            break
        text = new

    def slot(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "I":
            return person
        return expand(rng.choice(SLOTS[name]), rng, person)

    return _SLOT.sub(slot, text)


def add_noise(text: str, rng: random.Random, heavy: bool) -> str:
    """Typos, dialect, dropped or doubled punctuation: how messages really arrive."""
    if rng.random() < (0.6 if heavy else 0.2):
        wrong, right = rng.choice(TYPOS)
        text = text.replace(right, wrong, 1)
    if rng.random() < (0.5 if heavy else 0.15):
        std, dia = rng.choice(DIALECT)
        text = text.replace(std, dia)
    if heavy and rng.random() < 0.4:
        text = re.sub(r"[，。；]", " ", text)
    if rng.random() < 0.1:
        text = text.replace("。", "！！", 1)
    if rng.random() < 0.05:
        text = text.replace("，", ",")
    return re.sub(r"\s+", " ", text).strip()


# Joins the slot filler makes awkward ("我们们", "本人们", "？。").
_TIDY = (
    ("们们", "们"),
    ("本人们", "我们"),
    ("其们", "他们"),
    ("该户们", "他们"),
    ("？。", "？"),
    ("！。", "！"),
    ("，。", "。"),
    ("。，", "，"),
    ("，，", "，"),
)


def tidy(text: str) -> str:
    for wrong, right in _TIDY:
        text = text.replace(wrong, right)
    return text


def _pick(items: list[str], rng: random.Random, test: bool | None) -> tuple[int, str]:
    # Lists shorter than HOLD_OUT_EVERY have nothing held out: both splits use them all.
    # ``test=None`` draws from every template (the simulator's complaints).
    if test is None:
        return rng.choice(list(enumerate(items)))
    pool = [(i, s) for i, s in enumerate(items) if held_out(i) == test] or list(enumerate(items))
    return rng.choice(pool)


Clause = Literal["danger", "unrest", "consultation", "near_miss", "none"]


@dataclass(frozen=True)
class _Body:
    register: dict[str, Any]
    frame: str
    person: str
    text: str
    situation: str


def _body(category: str, rng: random.Random, test: bool | None) -> _Body:
    """What happened, in one register's words: a situation, or the category's words in a
    generic phrasing."""
    reg_index, frame = _pick([r["frame"] for r in REGISTERS], rng, test)
    reg = REGISTERS[reg_index]
    person = rng.choice(reg["person"])
    if rng.random() < LEXICON_SHARE:
        # A short complaint made of the category's words in a generic phrasing.
        sit_index, situation = _pick(GENERIC, rng, test)
        sit_index += 1000
        body = expand(situation.replace("$K", "<K>"), rng, person)
        while "<K>" in body:
            body = body.replace("<K>", rng.choice(LEXICON[category]), 1)
    else:
        sit_index, situation = _pick(SITUATIONS[category], rng, test)
        body = expand(situation, rng, person)
    return _Body(reg, frame, person, body, f"{category}:{sit_index}")


def _clause_for(category: str, roll: float) -> Clause:
    if roll < 0.14:
        return "danger"
    if (roll < 0.27 and category != "other") or roll < 0.18:
        return "unrest"
    if roll < 0.37:
        return "consultation"
    return "near_miss" if roll < 0.45 else "none"


def _finish(category: str, rng: random.Random, test: bool | None, b: _Body, clause: Clause) -> str:
    """The body with its clause, said in its register, with the noise of real messages."""
    person, body, extra = b.person, b.text, ""
    if clause == "danger":
        extra = expand(_pick(DANGER, rng, test)[1], rng, person)
    elif clause == "unrest":
        own = UNREST_FOR.get(category, [])
        extra = expand(
            _pick(own if own and rng.random() < 0.5 else UNREST, rng, test)[1], rng, person
        )
    elif clause == "consultation":
        form = expand(_pick(CONSULT_FORMS, rng, test)[1], rng, person)
        body = form.replace("<Q>", body.rstrip("。！!"))
    elif clause == "near_miss":
        extra = expand(_pick(NEAR_MISSES, rng, test)[1], rng, person)
    if category in MISLEADING and rng.random() < 0.3:
        _, misleading = _pick(MISLEADING[category], rng, test)
        body = body.rstrip("。") + "，" + expand(misleading, rng, person)
    if extra:
        body = body.rstrip("。") + ("，" if rng.random() < 0.5 else "。") + extra
    text = expand(b.frame, rng, person).replace("<B>", body)
    return add_noise(tidy(text), rng, heavy=b.register.get("noisy", False))


def compose_text(category: str, rng: random.Random, clause: Clause) -> str:
    """A complaint of ``category`` with the given clause, from every template: the
    simulator's generated arrivals (``models.sim_complaints``)."""
    return _finish(category, rng, None, _body(category, rng, None), clause)


PRIORITY_OF_CLAUSE: dict[Clause, str] = {
    "danger": "emergency",
    "unrest": "high",
    "consultation": "consultation",
}


def compose(category: str, rng: random.Random, *, test: bool) -> dict[str, object]:
    b = _body(category, rng, test)
    clause = _clause_for(category, rng.random())
    text = _finish(category, rng, test, b, clause)
    return {
        "text": text,
        "category": category,
        "priority": PRIORITY_OF_CLAUSE.get(clause, "normal"),
        "danger": clause == "danger",
        "unrest": clause == "unrest",
        "template": b.situation,
        "register": b.register["name"],
    }


def build(
    per_train: int = PER_CATEGORY_TRAIN, per_test: int = PER_CATEGORY_TEST
) -> list[dict[str, object]]:
    rng = random.Random(SEED)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for category in SITUATIONS:
        for test, count in ((False, per_train), (True, per_test)):
            made = 0
            attempts = 0
            while made < count and attempts < count * 20:
                attempts += 1
                row = compose(category, rng, test=test)
                if row["text"] in seen:
                    continue
                seen.add(str(row["text"]))
                row["split"] = "test" if test else ("valid" if rng.random() < 0.1 else "train")
                rows.append(row)
                made += 1
    return rows


def main(write: Callable[[str], object] | None = None) -> None:
    rows = build()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    OUT.write_text(lines, encoding="utf-8")
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['split']}"
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {len(rows)} complaints to {OUT.name}: {counts}")


if __name__ == "__main__":
    main()
