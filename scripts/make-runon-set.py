#!/usr/bin/env python3
"""Builds tests/data/emergency-runon.jsonl: run-on texts, as people who are upset (or speech
recognition) write them, from two sets written blind to the rules and the model.

Each emergency of emergency-blind5.jsonl, with every punctuation mark and space removed, is
joined to two routine lines of emergency-routine2.jsonl (first, middle or last in turn); then
100 routine texts of three routine lines each. Deterministic (seeded); run from the repository:
python3 scripts/make-runon-set.py > tests/data/emergency-runon.jsonl
"""
import json
import random
import re

random.seed(7)


def bare(text):
    return re.sub(r"[^\w]", "", text)


def label(line):
    expect = line.get("expect") or []
    return expect[0] if expect else "none"


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


routine = read("tests/data/emergency-routine2.jsonl")
emergencies = [l for l in read("tests/data/emergency-blind5.jsonl") if label(l) != "none"]
out = []
for i, line in enumerate(emergencies):
    a, b = bare(random.choice(routine)["text"]), bare(random.choice(routine)["text"])
    e = bare(line["text"])
    text = [e + a + b, a + e + b, a + b + e][i % 3]
    out.append({"text": text, "expected": label(line)})
for _ in range(100):
    a, b, c = random.sample(routine, 3)
    out.append({"text": bare(a["text"]) + bare(b["text"]) + bare(c["text"]), "expected": "none"})
for o in out:
    print(json.dumps(o, ensure_ascii=False))
