"""The dataset's privacy context, and the risk-assessment questions it pre-fills. Pure.

Synthetic data still carries the statistics of the people it was made from, so whether a
leak is likely to result in a risk to them (GDPR Art. 33(1)), or a high risk (Art. 34(1)),
depends on what the data was made from and how. The owner of a dataset records that as tags
on its storage account, or as metadata on its container (which wins for that container):

- `synthetic-generator`: the generator and its version, e.g. `ctgan 0.10.1`;
- `synthetic-source`: the source dataset it was made from;
- `source-personal-data`: `true`, `false` or `unknown`, whether the source held personal data;
- `source-special-categories`: `true`, `false` or `unknown`, whether it held special
  categories (GDPR Art. 9: health, religion, ...) or criminal-offence data (Art. 10);
- `dp-epsilon`: the differential-privacy ε the generator guarantees for the dataset (a
  number at least 0), or `none`;
- `dp-delta`: its δ (a number from 0 up to, not including, 1), where it has one;
- `data-owner`: who answers for the dataset (a team or a mailbox).

Container metadata names must be C# identifiers, so a container spells them with underscores
(`dp_epsilon`); either spelling is read in either place, names case-insensitively.

The context is read from the account and container bodies the incident's records hold
(their `before` and `after` states, as ARM returned them): the app's identity holds no
data-plane role, so a manifest blob inside the container is out of its reach. A value that
cannot be read is named as invalid and counted as not known, never guessed.

`prefill` turns the context and what leaked into suggested answers, each with why. It never
decides: the assessment (notifiable or not, high risk or not) is a person's, on the record.
"""
from __future__ import annotations

import math

from containment.record.leak import between, human_size, moment

TAGS = ("synthetic-generator", "synthetic-source", "source-personal-data", "source-special-categories",
        "dp-epsilon", "dp-delta", "data-owner")
BOOLEAN = ("source-personal-data", "source-special-categories")
# ε at or below this bounds what anyone learns about one person tightly (the literature's
# "strong" guarantee); above WEAK it protects little in practice.
STRONG_EPSILON = 1.0
WEAK_EPSILON = 10.0
_TRUE, _FALSE, _UNKNOWN = ("true", "yes", "1"), ("false", "no", "0"), ("unknown", "")
_NO_DP = ("none", "no", "n/a")
DECIDES = ("Suggestions only, from the dataset's tags and the incident's records: a person decides, and the "
           "assessment is recorded with who decided and why.")


# ---------------------------------------------------------------------------- reading


def contexts(incident, datasets: list[dict] | None = None) -> list[dict]:
    """The privacy context of each dataset the incident concerns (the leak's datasets, and
    the storage resources its records hold), from the latest body of each a record holds."""
    bodies = _bodies(incident.decisions)
    wanted: dict[tuple[str, str], tuple[str, str | None]] = {}
    named = [(d.get("account_id") or "", d.get("container")) for d in datasets or []]
    for account_id, container in named + [_split(str(body.get("id") or key)) for key, (body, *_) in bodies.items()]:
        if account_id:
            wanted.setdefault((account_id.lower(), (container or "").lower()), (account_id, container))
    found = [_context(account_id, _container_id(account_id, container), bodies)
             for account_id, container in wanted.values()]
    # An account whose containers are listed is read with each of them.
    with_container = {c["account_id"].lower() for c in found if c["container"]}
    return [c for c in found if c["container"] or c["account_id"].lower() not in with_container]


def _context(account_id: str, container_id: str | None, bodies: dict) -> dict:
    account = bodies.get(account_id.lower())
    container = bodies.get(container_id.lower()) if container_id else None
    sources = []
    values: dict[str, tuple[str, str]] = {}
    if account:
        tags = account[0].get("tags")
        sources.append({"what": "account tags", "resource_id": account_id, "decision": account[1],
                        "state": account[2]})
        for name, raw in _named(tags).items():
            values[name] = (raw, "account tags")
    if container:
        metadata = (container[0].get("properties") or {}).get("metadata") if isinstance(
            container[0].get("properties"), dict) else None
        sources.append({"what": "container metadata", "resource_id": container_id, "decision": container[1],
                        "state": container[2]})
        for name, raw in _named(metadata).items():
            values[name] = (raw, "container metadata")  # the container's own word wins for it
    fields = {name: parse(name, *values[name]) if name in values else
              {"name": name, "raw": None, "value": None, "status": "absent", "source": None, "problem": None}
              for name in TAGS}
    missing = []
    if not account:
        missing.append(f"no record of this incident holds the body of the account {_last(account_id)}, so its tags "
                       "are not known here")
    if container_id and not container:
        missing.append(f"no record holds the body of the container {_last(container_id)}, so its metadata is not "
                       "known here")
    return {"account": _last(account_id), "account_id": account_id, "container": _last(container_id),
            "container_id": container_id, "fields": fields, "sources": sources, "missing": missing,
            "problems": [f["problem"] for f in fields.values() if f["problem"]],
            "tagged": any(f["status"] != "absent" for f in fields.values())}


def parse(name: str, raw, source: str | None = None) -> dict:
    """One tag's value as read: `status` is valid, invalid (with the problem named) or absent."""
    field = {"name": name, "raw": raw, "value": None, "status": "valid", "source": source, "problem": None}
    text = str(raw).strip() if raw is not None else ""
    if name in BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE:
            field["value"] = True
        elif lowered in _FALSE:
            field["value"] = False
        elif lowered in _UNKNOWN:
            field["value"] = None
        else:
            field.update(status="invalid", problem=f"{name} is {text!r}: not true, false or unknown; read as unknown")
    elif name in ("dp-epsilon", "dp-delta"):
        if text.lower() in _NO_DP and name == "dp-epsilon":
            field["value"] = "none"
            return field
        try:
            number = float(text)
        except ValueError:
            number = None
        upper_ok = number is not None and (number < 1 if name == "dp-delta" else True)
        if number is None or not math.isfinite(number) or number < 0 or not upper_ok:
            expected = "a number at least 0, or none" if name == "dp-epsilon" else "a number from 0 up to 1"
            field.update(status="invalid", problem=f"{name} is {text!r}: not {expected}; read as no guarantee"
                         if name == "dp-epsilon" else f"{name} is {text!r}: not {expected}; ignored")
        else:
            field["value"] = number
    else:
        field["value"] = text or None
    return field


def _bodies(records) -> dict[str, tuple[dict, str, str]]:
    """The latest body of each storage account and container the records hold:
    {lower-case ID: (body, decision key, "before" or "after")}."""
    bodies: dict[str, tuple[dict, str, str]] = {}
    for record in records:
        for state, held in (("before", record.before), ("after", record.after)):
            for resource_id, body in (held or {}).items():
                if not isinstance(body, dict):
                    continue  # deleted (None) or not a body
                account_id, _ = _split(str(body.get("id") or resource_id))
                if account_id:
                    bodies[str(body.get("id") or resource_id).lower()] = (body, record.key, state)
    return bodies


def _named(tags) -> dict[str, str]:
    """The context's tags among a resource's tags or metadata, by canonical name."""
    if not isinstance(tags, dict):
        return {}
    found = {}
    for key, value in tags.items():
        name = str(key).strip().lower().replace("_", "-")
        if name in TAGS:
            found[name] = value
    return found


def _split(resource_id: str) -> tuple[str | None, str | None]:
    """(account ID, container name) of a storage account or container ID, else (None, None)."""
    parts = str(resource_id).split("/")
    lowered = [p.lower() for p in parts]
    if "storageaccounts" not in lowered:
        return None, None
    at = lowered.index("storageaccounts")
    if at + 1 >= len(parts):
        return None, None
    rest = lowered[at + 2:]
    if rest and rest[:3] != ["blobservices", "default", "containers"][:len(rest)]:
        return None, None  # a role assignment or another child: not a dataset's body
    container = parts[at + 5] if len(rest) >= 4 and rest[:3] == ["blobservices", "default", "containers"] else None
    if rest and container is None:
        return None, None
    return "/".join(parts[:at + 2]), container


def _container_id(account_id: str, container: str | None) -> str | None:
    return f"{account_id}/blobServices/default/containers/{container}" if account_id and container else None


def _last(resource_id: str | None) -> str | None:
    return str(resource_id).rstrip("/").rsplit("/", 1)[-1] if resource_id else None


# ---------------------------------------------------------------------------- combined


def combined(found: list[dict]) -> dict:
    """The riskiest reading across the datasets: personal data if any held it, unknown if
    any is not known; no guarantee if any lacks one, else the weakest ε."""
    def tri(name: str) -> tuple[bool | None, list[str]]:
        answers = [(c["fields"][name]["value"], _label(c)) for c in found]
        if any(value is True for value, _ in answers):
            return True, [label for value, label in answers if value is True]
        if not answers or any(value is None for value, _ in answers):
            return None, [label for value, label in answers if value is None]
        return False, [label for _, label in answers]

    personal, personal_from = tri("source-personal-data")
    special, special_from = tri("source-special-categories")
    epsilons = [(c["fields"]["dp-epsilon"]["value"], c["fields"]["dp-delta"]["value"], _label(c)) for c in found]
    without = [label for value, _, label in epsilons if not isinstance(value, float)]
    if without or not epsilons:
        epsilon, delta, epsilon_from = None, None, without
    else:
        epsilon, delta, label = max(epsilons, key=lambda e: e[0])
        epsilon_from = [label]
    owners = sorted({c["fields"]["data-owner"]["value"] for c in found if c["fields"]["data-owner"]["value"]})
    return {"personal_data": personal, "personal_data_from": personal_from, "special_categories": special,
            "special_categories_from": special_from, "epsilon": epsilon, "delta": delta, "epsilon_from": epsilon_from,
            "owners": owners, "problems": [p for c in found for p in c["problems"]],
            "missing": [m for c in found for m in c["missing"]], "datasets": [_label(c) for c in found]}


def _label(context: dict) -> str:
    return f"{context['account']}/{context['container']}" if context["container"] else str(context["account"])


# ---------------------------------------------------------------------------- questions


def prefill(found: list[dict], leak: dict | None = None) -> dict:
    """The risk-assessment questions with suggested answers and why. `suggestion` words are
    never a decision: the assessment itself is a person's."""
    risk = combined(found)
    questions = [_personal(risk), _guarantee(risk), _special(risk), _what_happened(leak), _owner(risk)]
    art33, art34 = _art33(risk, leak), _art34(risk, leak)
    return {"note": DECIDES, "context": risk, "questions": questions + [art33, art34]}


def _question(key: str, question: str, answer: str, suggestion: str, why: list[str]) -> dict:
    return {"id": key, "question": question, "answer": answer, "suggestion": suggestion, "why": why}


def _from(labels: list[str]) -> str:
    return f" ({', '.join(labels)})" if labels else ""


def _personal(risk: dict) -> dict:
    value = risk["personal_data"]
    why = [f"source-personal-data on {', '.join(risk['personal_data_from']) or 'the datasets'}"] if value is not None \
        else ["no readable source-personal-data tag" + _from(risk["personal_data_from"])] + risk["missing"]
    return _question("source-personal-data", "Did the source data (what the synthetic data was generated from) hold personal data?",
                     {True: "Yes", False: "No", None: "Unknown"}[value] + _from(risk["personal_data_from"]),
                     {True: "yes", False: "no", None: "unknown"}[value], why + _problems(risk, "source-personal-data"))


def _guarantee(risk: dict) -> dict:
    epsilon, delta = risk["epsilon"], risk["delta"]
    if epsilon is None:
        return _question("dp-epsilon", "Does a formal privacy guarantee bound what the data reveals about one person?",
                         "None recorded" + _from(risk["epsilon_from"]), "none",
                         ["no valid dp-epsilon tag (or dp-epsilon=none): without a stated differential-privacy "
                          "guarantee, synthetic data can reproduce source records or show who was in the source"]
                         + _problems(risk, "dp-epsilon"))
    strength = "strong" if epsilon <= STRONG_EPSILON else "moderate" if epsilon <= WEAK_EPSILON else "weak"
    return _question("dp-epsilon", "Does a formal privacy guarantee bound what the data reveals about one person?",
                     f"Differential privacy, ε = {epsilon:g}{f', δ = {delta:g}' if delta is not None else ''}"
                     + _from(risk["epsilon_from"]), strength,
                     [f"ε ≤ {STRONG_EPSILON:g} is a strong guarantee; up to {WEAK_EPSILON:g} moderate; above that "
                      "it protects little", "check that ε accounts for every dataset made from the same source"]
                     + _problems(risk, "dp-epsilon"))


def _special(risk: dict) -> dict:
    value = risk["special_categories"]
    return _question("source-special-categories",
                     "Did the source hold special categories of personal data (Art. 9) or criminal-offence data "
                     "(Art. 10)?", {True: "Yes", False: "No", None: "Unknown"}[value] +
                     _from(risk["special_categories_from"]), {True: "yes", False: "no", None: "unknown"}[value],
                     ["source-special-categories tag" if value is not None else
                      "no readable source-special-categories tag"] + _problems(risk, "source-special-categories"))


def _what_happened(leak: dict | None) -> dict:
    reads = (leak or {}).get("reads")
    # A weakness (containment.judge.rule) exposes no one: it is not what this question asks about.
    exposures = [x for x in (leak or {}).get("exposures") or [] if not x.get("weakness")]
    if reads:
        return _question("read", "Was the data read by someone not entitled to it, or only exposed?",
                         f"Read: {human_size(reads['bytes'])} in {reads['requests']:,} requests by "
                         f"{reads['caller_count']:,} caller{'s' if reads['caller_count'] != 1 else ''} "
                         f"{between(moment(reads['first_read']), moment(reads['last_read']))}", "read",
                         ["the egress scan's findings (StorageBlobLogs) record the reads"])
    if exposures:
        return _question("read", "Was the data read by someone not entitled to it, or only exposed?",
                         "Exposed; no reads in this incident's records", "exposed",
                         ["the findings record an exposure, not reads: whether anyone used it is in the account's "
                          "StorageBlobLogs (the egress scan reports anomalous reads where logs are configured)"])
    return _question("read", "Was the data read by someone not entitled to it, or only exposed?", "Unknown",
                     "unknown", ["the records name neither reads nor an exposure"])


def _owner(risk: dict) -> dict:
    owners = risk["owners"]
    return _question("data-owner", "Who answers for the dataset?", ", ".join(owners) or "Not recorded",
                     "ask them" if owners else "unknown",
                     ["data-owner tag" if owners else "no data-owner tag: the account's owner or team tag may say"])


def _problems(risk: dict, name: str) -> list[str]:
    return [p for p in risk["problems"] if p.startswith(name + " ")]


def _art33(risk: dict, leak: dict | None) -> dict:
    """Article 33(1): notify unless the breach is unlikely to result in a risk to people."""
    question = ("Art. 33(1): is the breach likely to result in a risk to the rights and freedoms of individuals "
                "(notify the supervisory authority within 72 hours)?")
    personal, epsilon = risk["personal_data"], risk["epsilon"]
    read = bool((leak or {}).get("reads"))
    happened = ("the data was read" if read else
                "the data was exposed: that these records show no reads lowers the likelihood, and does not rule "
                "reads out")
    if personal is False:
        return _question("art33", question, "Likely not, if the tags are right: the source held no personal data",
                         "unlikely: a person confirms",
                         ["source-personal-data=false: the synthetic data carries no one's statistics",
                          "confirm with the data owner before relying on a tag", happened,
                          "the breach is documented either way (Art. 33(5))"])
    if personal is None:
        return _question("art33", question, "Unknown: whether the source held personal data is not recorded",
                         "unknown: find out",
                         ["ask the data owner" + (f" ({', '.join(risk['owners'])})" if risk["owners"] else ""),
                          "until it is known, the 72 hours run as for personal data", happened])
    if epsilon is None:
        return _question("art33", question, "Likely risk to individuals: notify", "notify",
                         ["the source held personal data", "no differential-privacy guarantee is recorded: the "
                          "data can reveal records of the source or who was in it (membership inference)", happened])
    if epsilon <= STRONG_EPSILON:
        return _question("art33", question, f"Lower risk: a strong guarantee (ε = {epsilon:g}) bounds what the data "
                         "reveals about any one person; a person decides", "lower risk: a person decides",
                         ["the source held personal data", f"ε ≤ {STRONG_EPSILON:g}: what anyone can learn about "
                          "one person is tightly bounded", "check ε covers every release from the same source and "
                          "δ is small", happened, "if you assess it not notifiable, record why (Art. 33(5))"])
    return _question("art33", question, f"Risk not ruled out: ε = {epsilon:g} is a "
                     f"{'moderate' if epsilon <= WEAK_EPSILON else 'weak'} guarantee; lean to notify",
                     "lean to notify", ["the source held personal data",
                                        f"ε above {STRONG_EPSILON:g} bounds what the data reveals about one person "
                                        "only loosely", happened])


def _art34(risk: dict, leak: dict | None) -> dict:
    """Article 34(1): inform the people concerned when the risk is high."""
    question = "Art. 34(1): is it likely to result in a high risk (inform the people concerned)?"
    personal, special, epsilon = risk["personal_data"], risk["special_categories"], risk["epsilon"]
    weak = epsilon is None or epsilon > STRONG_EPSILON
    if personal is False:
        return _question("art34", question, "Not suggested: the source held no personal data", "not suggested",
                         ["source-personal-data=false"])
    if personal and special and weak:
        return _question("art34", question, "High risk likely: consider informing the people concerned",
                         "consider informing",
                         ["special categories in the source", "no strong privacy guarantee" if epsilon is None else
                          f"ε = {epsilon:g} bounds what the data reveals only loosely",
                          "the data was read" if (leak or {}).get("reads") else "the data was exposed"])
    if personal is None or special is None:
        unknown = " and ".join(name for name, value in (("personal data", personal), ("special categories", special))
                               if value is None)
        return _question("art34", question, f"Unknown: whether the source held {unknown} is not recorded", "unknown",
                         [f"no readable {'source-personal-data' if personal is None else 'source-special-categories'} "
                          "tag", "special categories, or a large number of people concerned, make a high risk likely"])
    return _question("art34", question, "Not suggested by the tags: a person judges the scale and what the data "
                     "could reveal", "not suggested", ["no special categories" if special is False else
                                                       f"a strong guarantee (ε = {epsilon:g})"])
