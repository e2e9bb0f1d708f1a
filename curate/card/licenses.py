"""Which license a curated set carries: the most restrictive of its sources'.

A small explicit table orders the Hub's license ids from most permissive to most restrictive. Each id
also carries the restrictions that travel with the data: `sa` (share-alike / copyleft), `nd` (no
derivatives) and `nc` (non-commercial). The set's license is the most restrictive source license; if
the sources together carry a restriction that license lacks (cc-by-sa + cc-by-nc), the Creative
Commons 4.0 license that carries all of them is used instead (cc-by-nc-sa-4.0). A source without a
license makes the set's license "unknown"; an id outside the table (or restrictions no single
license carries) makes it "other". Either way every source's own license is listed in the card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# id -> restrictions, in order from most permissive to most restrictive. Ids are the Hub's.
ORDER: tuple[tuple[str, frozenset], ...] = tuple((k, frozenset(v)) for k, v in (
    # public domain
    ("cc0-1.0", ()), ("pddl", ()), ("unlicense", ()), ("wtfpl", ()),
    # permissive, attribution only
    ("mit", ()), ("isc", ()), ("zlib", ()), ("bsl-1.0", ()), ("postgresql", ()), ("ncsa", ()),
    ("bsd", ()), ("bsd-2-clause", ()), ("bsd-3-clause", ()), ("bsd-3-clause-clear", ()),
    ("apache-2.0", ()), ("ecl-2.0", ()), ("afl-3.0", ()), ("artistic-2.0", ()), ("ms-pl", ()),
    ("etalab-2.0", ()), ("cdla-permissive-1.0", ()), ("cdla-permissive-2.0", ()), ("odc-by", ()),
    ("cc-by-2.0", ()), ("cc-by-2.5", ()), ("cc-by-3.0", ()), ("cc-by-4.0", ()),
    # share-alike / copyleft
    ("mpl-2.0", ("sa",)), ("epl-1.0", ("sa",)), ("epl-2.0", ("sa",)), ("lgpl-lr", ("sa",)),
    ("lgpl", ("sa",)), ("lgpl-2.1", ("sa",)), ("lgpl-3.0", ("sa",)), ("eupl-1.1", ("sa",)),
    ("osl-3.0", ("sa",)), ("cdla-sharing-1.0", ("sa",)), ("odbl", ("sa",)), ("gfdl", ("sa",)),
    ("gpl", ("sa",)), ("gpl-2.0", ("sa",)), ("gpl-3.0", ("sa",)), ("agpl-3.0", ("sa",)),
    ("cc-by-sa-3.0", ("sa",)), ("cc-by-sa-4.0", ("sa",)),
    # no derivatives (a curated subset is an adaptation: flagged)
    ("cc-by-nd-4.0", ("nd",)),
    # non-commercial
    ("cc-by-nc-2.0", ("nc",)), ("cc-by-nc-3.0", ("nc",)), ("cc-by-nc-4.0", ("nc",)),
    ("cc-by-nc-sa-2.0", ("nc", "sa")), ("cc-by-nc-sa-3.0", ("nc", "sa")), ("cc-by-nc-sa-4.0", ("nc", "sa")),
    ("cc-by-nc-nd-3.0", ("nc", "nd")), ("cc-by-nc-nd-4.0", ("nc", "nd")),
))
RANK = {lid: i for i, (lid, _) in enumerate(ORDER)}
FLAGS = dict(ORDER)
# The Creative Commons 4.0 license that carries a set of restrictions, for combinations.
CC4 = {frozenset(): "cc-by-4.0", frozenset({"sa"}): "cc-by-sa-4.0", frozenset({"nd"}): "cc-by-nd-4.0",
       frozenset({"nc"}): "cc-by-nc-4.0", frozenset({"nc", "sa"}): "cc-by-nc-sa-4.0",
       frozenset({"nc", "nd"}): "cc-by-nc-nd-4.0"}

# Every license id the Hub accepts in a card's `license:` field (huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = frozenset(FLAGS) | frozenset({
    "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "openrail++", "c-uda", "cc", "lppl-1.3c", "apple-ascl", "ofl-1.1",
    "deepfloyd-if-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma",
    "unknown", "other",
})
ALIASES = {"apache2": "apache-2.0", "apache-2": "apache-2.0", "apache-license-2.0": "apache-2.0",
           "cc0": "cc0-1.0", "cc-0": "cc0-1.0", "gplv3": "gpl-3.0", "gplv2": "gpl-2.0"}
UNKNOWN = "unknown"


def normalise(license_id: str | None) -> str:
    """Lower case, spaces and underscores as hyphens, a few common aliases; None/"" -> unknown."""
    if license_id is None or not str(license_id).strip():
        return UNKNOWN
    lid = "-".join(str(license_id).strip().lower().replace("_", " ").split())
    return ALIASES.get(lid, lid)


def is_non_commercial(license_id: str) -> bool:
    return "nc" in FLAGS.get(normalise(license_id), ()) or "-nc-" in f"-{normalise(license_id)}-"


@dataclass
class LicenseDecision:
    license: str  # the card's `license:` value
    per_source: dict[str, str]  # source -> its (normalised) license
    non_commercial: list[str]  # sources under a non-commercial license
    no_derivatives: list[str]  # sources whose license forbids adaptations
    unknown: list[str]  # sources without a license
    unranked: list[str]  # sources whose license is outside the table
    combined: bool = False  # the license is a combination, not any one source's
    warnings: list[str] = field(default_factory=list)

    @property
    def is_non_commercial(self) -> bool:
        return bool(self.non_commercial)


def decide(per_source: dict[str, str | None]) -> LicenseDecision:
    """The set's license from {source: license}: see the module docstring."""
    lic = {name: normalise(v) for name, v in per_source.items()}
    unknown = [n for n, v in lic.items() if v == UNKNOWN]
    unranked = [n for n, v in lic.items() if v != UNKNOWN and v not in FLAGS]
    nc = [n for n, v in lic.items() if is_non_commercial(v)]
    nd = [n for n, v in lic.items() if "nd" in FLAGS.get(v, ())]
    warnings = [no_license_message(n) for n in unknown]
    warnings += [f"source {n!r} has license {lic[n]!r}, which curate cannot rank: the card's license is 'other'"
                 for n in unranked]
    warnings += [f"source {n!r} is {lic[n]} (no derivatives): a curated subset is an adaptation; check its terms"
                 for n in nd]
    combined = False
    if unknown:
        result = UNKNOWN
    elif unranked:
        result = "other"
    else:
        result = max(lic.values(), key=RANK.__getitem__)
        needed = frozenset().union(*(FLAGS[v] for v in lic.values()))
        if not needed <= FLAGS[result]:
            combined = True
            result = CC4.get(needed, "other")
            if result == "other":
                warnings.append(f"no single license carries the sources' restrictions ({', '.join(sorted(needed))}): "
                                "the card's license is 'other'")
    return LicenseDecision(result, lic, nc, nd, unknown, unranked, combined, warnings)


def no_license_message(source: str) -> str:
    """The one wording of this warning, so `curate run` and the card can print it once."""
    if "/" in source:  # a mix component's source, from another run: fix it there
        component, name = source.split("/", 1)
        return (f"source {name!r} of mix component {component!r} has no license in its run: this data card will say "
                "'unknown' (set the license in that run's recipe)")
    return f"source {source!r} has no license: its data card will say 'unknown' (set sources.{source}.license)"


def missing_license_warnings(recipe_or_manifest_sources: dict) -> list[str]:
    """One line per source without a license, for `curate run` / `curate validate` to print.

    Takes a recipe's `sources` ({name: Source or dict}) or a manifest's `sources` block."""
    out = []
    for name, src in recipe_or_manifest_sources.items():
        value = src.get("license") if isinstance(src, dict) else getattr(src, "license", None)
        if normalise(value) == UNKNOWN:
            out.append(no_license_message(name))
    return out
