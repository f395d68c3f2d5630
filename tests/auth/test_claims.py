"""Claim parsing into the canonical group model, and safe usernames."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_jupyterhub.auth.claims import (
    GROUP_FORMATS,
    ClaimProblem,
    GroupParseResult,
    canonical_groups,
    parse_entitlements,
    parse_iam_groups,
    parse_wlcg_groups,
)
from iris_jupyterhub.auth.usernames import safe_username
from iris_jupyterhub.groups import (
    GroupMembership,
    GroupRule,
    all_rules_match,
    any_rule_matches,
    group_names,
    membership_from_string,
    parse_group_rule,
)

SAMPLES = Path(__file__).parents[3] / "shared" / "claims"
EGI = "urn:mace:egi.eu"
EDUTEAMS = "urn:geant:eduteams.org:service:eduteams"
IAM_AARC = "urn:geant:iris-iam.stfc.ac.uk"
ALL_SOURCES = {
    "groups": "iam",
    "wlcg.groups": "wlcg",
    "eduperson_entitlement": "entitlement",
    "entitlements": "entitlement",
}

# The canonical syntax, written out independently of the module under test.
COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@-]{0,127}")
ROLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def sample(name: str) -> dict[str, Any]:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"claim samples not found at {SAMPLES} (the repo's sibling ../shared)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def strings(result: GroupParseResult) -> list[str]:
    return [str(m) for m in result.memberships]


def assert_canonical(result: GroupParseResult) -> None:
    """Every membership satisfies the syntax; every problem is short and printable."""
    assert list(result.memberships) == sorted(set(result.memberships))
    for m in result.memberships:
        assert all(COMPONENT.fullmatch(c) for c in (m.vo, *m.path)), m
        assert len(m.group) <= 255
        assert m.role is None or ROLE.fullmatch(m.role), m
    for problem in result.problems:
        assert len(problem.value) <= 80
        assert problem.value.isprintable()
        assert problem.reason


# --- Real claim shapes -----------------------------------------------------------------

CHECKIN_GROUPS = [
    "vo.access.egi.eu:role=member",
    "vo.iris.ac.uk:role=member",
    "vo.iris.ac.uk:role=vm_operator",
    "vo.iris.ac.uk/lsst:role=member",
    "vo.iris.ac.uk/lsst/desc:role=manager",
]
IAM_GROUPS = ["dune", "dune/production", "iris", "iris/lsst"]


def test_checkin_userinfo_gives_vo_roles_and_subgroups() -> None:
    claims = sample("checkin-userinfo.json")
    result = canonical_groups(claims, ALL_SOURCES, [EGI])
    assert strings(result) == CHECKIN_GROUPS
    assert result.problems == ()  # capabilities and other namespaces are skipped quietly


def test_checkin_eduteams_group_only_when_its_namespace_is_configured() -> None:
    claims = sample("checkin-userinfo.json")
    result = parse_entitlements(claims["eduperson_entitlement"], [EGI, EDUTEAMS])
    assert strings(result) == sorted(
        [*CHECKIN_GROUPS, "iris-training:role=member"],
        key=membership_from_string,
    )
    assert result.problems == ()


def test_checkin_id_token_carries_no_groups() -> None:
    result = canonical_groups(sample("checkin-id-token.json"), ALL_SOURCES, [EGI])
    assert result == GroupParseResult()


def test_iam_wlcg_profile() -> None:
    claims = sample("iam-id-token-wlcg.json")
    result = canonical_groups(claims, ALL_SOURCES, [EGI, IAM_AARC])
    assert strings(result) == IAM_GROUPS
    assert result.problems == ()


def test_iam_iam_profile() -> None:
    result = parse_iam_groups(sample("iam-userinfo-iam-profile.json")["groups"])
    assert strings(result) == IAM_GROUPS
    assert result.problems == ()


def test_iam_aarc_profile_gives_the_same_groups() -> None:
    claims = sample("iam-userinfo-aarc-profile.json")
    result = canonical_groups(claims, ALL_SOURCES, [EGI, IAM_AARC])
    assert strings(result) == ["dune/production", "iris", "iris/lsst"]
    assert result.problems == ()


def test_iam_aarc_profile_needs_its_namespace() -> None:
    claims = sample("iam-userinfo-aarc-profile.json")
    assert canonical_groups(claims, ALL_SOURCES, [EGI]) == GroupParseResult()


def test_all_three_iam_profiles_agree() -> None:
    found = [
        group_names(canonical_groups(sample(name), ALL_SOURCES, [IAM_AARC]).memberships)
        for name in (
            "iam-id-token-wlcg.json",
            "iam-userinfo-iam-profile.json",
            "iam-userinfo-aarc-profile.json",
        )
    ]
    assert found[0] == found[1] == IAM_GROUPS
    assert set(found[2]) < set(IAM_GROUPS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("checkin-userinfo.json", "ada"),
        ("iam-userinfo-iam-profile.json", "aresearcher"),
        ("iam-userinfo-aarc-profile.json", "aresearcher"),
    ],
)
def test_sample_usernames(name: str, expected: str) -> None:
    assert safe_username(sample(name)["preferred_username"]) == expected


# --- Source formats in detail ----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("/dune/Role=production", "dune:role=production"),
        ("/dune/role=production", "dune:role=production"),
        ("/dune/sub/ROLE=pilot", "dune/sub:role=pilot"),
        ("/dune", "dune"),
    ],
)
def test_wlcg_roles(entry: str, expected: str) -> None:
    result = parse_wlcg_groups([entry])
    assert strings(result) == [expected]
    assert result.problems == ()


@pytest.mark.parametrize(
    "entry", ["/Role=production", "/dune/Role=", "/dune/Role=a/b", "/dune/Role=a b", "dune"]
)
def test_wlcg_malformed(entry: str) -> None:
    result = parse_wlcg_groups([entry])
    assert result.memberships == ()
    assert len(result.problems) == 1


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("urn:mace:egi.eu:group:vo.iris.ac.uk", "vo.iris.ac.uk"),
        ("urn:mace:egi.eu:group:vo.iris.ac.uk:lsst#aai.egi.eu", "vo.iris.ac.uk/lsst"),
        (
            "urn:mace:egi.eu:group:vo.iris.ac.uk:Role=member#aai.egi.eu",
            "vo.iris.ac.uk:role=member",
        ),
        (
            "urn:mace:egi.eu:group:vo.iris.ac.uk:ls%73t:role=mem%62er",
            "vo.iris.ac.uk/lsst:role=member",
        ),
        ("urn:mace:egi.eu:group:vo%2Eiris.ac.uk#aai.egi.eu", "vo.iris.ac.uk"),
    ],
)
def test_entitlement_forms(entry: str, expected: str) -> None:
    result = parse_entitlements(entry, [EGI])
    assert strings(result) == [expected]
    assert result.problems == ()


@pytest.mark.parametrize(
    "entry",
    [
        "urn:mace:egi.eu:group:vo.iris.ac.uk:role=member:lsst#aai.egi.eu",  # role not last
        "urn:mace:egi.eu:group:vo.iris.ac.uk:lsst%3Aadmin",  # encoded ':' inside a part
        "urn:mace:egi.eu:group:vo.iris.ac.uk:%2E%2E",  # encoded '..'
        "urn:mace:egi.eu:group:vo.iris.ac.uk:lsst%2Fdesc",  # encoded '/'
        "urn:mace:egi.eu:group:vo.iris.ac.uk:role%3Dadmin",  # encoded '=' is not a role
        "urn:mace:egi.eu:group:vo.iris.ac.uk:%FF",  # not UTF-8
        "urn:mace:egi.eu:group:vo.iris.ac.uk#aai egi",  # bad authority
        "urn:mace:egi.eu:group:vo.iris.ac.uk:",  # empty sub-group
    ],
)
def test_entitlement_malformed_in_configured_namespace(entry: str) -> None:
    result = parse_entitlements([entry], [EGI])
    assert result.memberships == ()
    assert len(result.problems) == 1


@pytest.mark.parametrize(
    "entry",
    [
        "urn:mace:egi.eu:res:rcauth:cap:issue",
        "urn:mace:egi.eu:aai.egi.eu:member@vo.access.egi.eu",
        "URN:MACE:EGI.EU:group:vo.iris.ac.uk",  # the configured prefix is case-sensitive
        "urn:mace:egi.eu:Group:vo.iris.ac.uk",
        "urn:mace:egi.eu.evil:group:vo.iris.ac.uk",
        "urn:geant:eduteams.org:service:eduteams:group:iris-training:role=member",
    ],
)
def test_entitlements_outside_configured_group_namespaces_are_skipped(entry: str) -> None:
    assert parse_entitlements([entry], [EGI]) == GroupParseResult()


def test_longest_namespace_wins() -> None:
    result = parse_entitlements(["urn:x:sub:group:vo"], ["urn:x", "urn:x:sub"])
    assert strings(result) == ["vo"]


def test_namespaces_must_be_a_list() -> None:
    with pytest.raises(TypeError, match="list of strings"):
        parse_entitlements([], EGI)
    with pytest.raises(ValueError, match="entitlement namespace"):
        parse_entitlements([], [EGI, ""])


def test_single_string_claim_is_one_element_list() -> None:
    assert strings(parse_iam_groups("iris/lsst")) == ["iris/lsst"]
    assert strings(parse_wlcg_groups("/iris")) == ["iris"]


def test_results_are_sorted_and_deduplicated_with_claim_names_in_problems() -> None:
    result = parse_iam_groups(["iris/lsst", "iris", "iris/lsst", "bad name", "bad name"], "grp")
    assert strings(result) == ["iris", "iris/lsst"]
    assert len(result.problems) == 1
    assert result.problems[0].claim == "grp"
    assert result.problems[0].value == "'bad name'"
    assert str(result.problems[0]).startswith("grp: ")


def test_group_names_drop_roles() -> None:
    result = canonical_groups(sample("checkin-userinfo.json"), ALL_SOURCES, [EGI])
    assert group_names(result.memberships) == [
        "vo.access.egi.eu",
        "vo.iris.ac.uk",
        "vo.iris.ac.uk/lsst",
        "vo.iris.ac.uk/lsst/desc",
    ]


# --- canonical_groups ------------------------------------------------------------------


def test_claim_names_are_literal_not_paths() -> None:
    claims = {"wlcg": {"groups": ["/evil"]}, "wlcg.groups": ["/iris"]}
    result = canonical_groups(claims, {"wlcg.groups": "wlcg"}, [EGI])
    assert strings(result) == ["iris"]
    nested_only = {"wlcg": {"groups": ["/iris"]}}
    assert canonical_groups(nested_only, {"wlcg.groups": "wlcg"}, [EGI]) == GroupParseResult()


def test_sources_merge_and_deduplicate() -> None:
    claims = {
        "groups": ["iris", "bad/"],
        "wlcg.groups": ["/iris", "/dune/Role=pilot"],
        "entitlements": ["urn:mace:egi.eu:group:iris:role=member"],
    }
    result = canonical_groups(claims, ALL_SOURCES, [EGI])
    assert strings(result) == ["dune:role=pilot", "iris", "iris:role=member"]
    assert [p.claim for p in result.problems] == ["groups"]


def test_unknown_format_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown group claim format"):
        canonical_groups({}, {"groups": "scim"}, [EGI])
    assert GROUP_FORMATS == ("iam", "wlcg", "entitlement")


# --- Hostile values ---------------------------------------------------------------------


def hostile() -> dict[str, Any]:
    return sample("hostile.json")


@pytest.mark.parametrize("index", range(10))
def test_hostile_groups_rejected_in_every_format(index: int) -> None:
    groups = hostile()["groups"]
    value = groups[index]
    iam = parse_iam_groups([value])
    assert iam.memberships == ()
    assert len(iam.problems) == 1
    wlcg = parse_wlcg_groups([value])
    if value == "/iris":  # the one well-formed WLCG path in the list
        assert strings(wlcg) == ["iris"]
    else:
        assert wlcg.memberships == ()
        assert len(wlcg.problems) == 1
    # Percent-encoding is no way around the syntax check.
    urn = parse_entitlements([f"{EGI}:group:{quote(value, safe='')}"], [EGI])
    assert urn.memberships == ()
    assert len(urn.problems) == 1
    for result in (iam, wlcg, urn):
        assert_canonical(result)


def test_hostile_groups_together() -> None:
    groups = hostile()["groups"]
    result = parse_iam_groups(groups)
    assert result.memberships == ()
    assert len(result.problems) == len(groups)
    assert_canonical(result)


def test_hostile_entitlements() -> None:
    entitlements = hostile()["entitlements"]
    group_urns = [e for e in entitlements if e.startswith(f"{EGI}:group:")]
    assert len(group_urns) == 5
    result = parse_entitlements(entitlements, [EGI])
    assert result.memberships == ()
    # Each malformed group URN is a problem; "garbage" and "" are not in a configured
    # namespace, so (like any non-group entitlement) they are skipped without a problem.
    assert [p.value for p in result.problems] == [repr(e) for e in group_urns]
    assert_canonical(result)


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_hostile_non_string_values(fmt: str) -> None:
    values = hostile()["non_string_values"]
    claim = {"iam": "groups", "wlcg": "wlcg.groups", "entitlement": "entitlements"}[fmt]
    as_entries = canonical_groups({claim: values}, {claim: fmt}, [EGI])
    assert as_entries.memberships == ()
    assert len(as_entries.problems) == len(values)
    for value in values:
        whole = canonical_groups({claim: value}, {claim: fmt}, [EGI])
        if isinstance(value, list):  # ["list"] is a well-typed claim holding one string
            expected = {"iam": (["list"], 0), "wlcg": ([], 1), "entitlement": ([], 0)}[fmt]
            assert (strings(whole), len(whole.problems)) == expected
        else:
            assert whole.memberships == ()
            assert [p.reason for p in whole.problems] == ["expected a list of strings"]


def test_oversized_claims() -> None:
    many = [f"vo{i}" for i in range(10_000)]
    assert len(parse_iam_groups(many).memberships) == 10_000
    assert len(parse_wlcg_groups(["/" + g for g in many] * 2).memberships) == 10_000
    urns = [f"{EGI}:group:vo:g{i}:role=member#aai.egi.eu" for i in range(10_000)]
    assert len(parse_entitlements(urns, [EGI]).memberships) == 10_000
    huge = "a" * 5_000
    for value in (huge, "/" + huge, f"{EGI}:group:{huge}", "a/" * 2_500, f"iris:{huge}"):
        result = canonical_groups(
            {"g": [value, "iris"], "w": [value], "e": [value]},
            {"g": "iam", "w": "wlcg", "e": "entitlement"},
            [EGI],
        )
        assert group_names(result.memberships) == ["iris"]
        assert result.problems
        assert_canonical(result)
    many_bad = parse_iam_groups([f"bad {i}" for i in range(10_000)])
    assert len(many_bad.problems) == 10_000
    assert len(parse_iam_groups({"k": many}).problems) == 1


USERNAMES = {
    "../../root": None,
    "root": "root",  # reserved names are the POSIX layer's business
    "a;rm -rf /": None,
    "admin\u0000x": None,
    "ALICE": "alice",
    "\u00fcn\u00efc\u00f8d\u00e9": "unicode",
    "-rf": "rf",
    ".": None,
    "..": None,
    "a/b": None,
    "a b": "a-b",
    "0123": "0123",
    "": None,
}


@pytest.mark.parametrize("raw", USERNAMES)
def test_hostile_usernames(raw: str) -> None:
    assert raw in hostile()["usernames"]
    assert safe_username(raw) == USERNAMES[raw]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@egi.eu", "ada-egi.eu"),
        ("Stra\u00dfe", "strasse"),
        ("\u0141ukasz \u00c6r\u00f8", "lukasz-aero"),
        ("\ufb01le", "file"),  # ligature, NFKC
        ("a..b", "a.b"),
        ("_x_", "x"),
        ("a  !!  b", "a-b"),
        ("\u5f20\u4f1f", None),  # nothing left after cleaning
        ("x" * 64, "x" * 64),
        ("x" * 65, None),  # never truncated
        ("a\\b", None),
        ("\u202eevil", None),  # bidi override
        ("a\u200bb", None),  # zero-width space
        ("a\tb", None),
        ("a\nb", None),
        ("\uff0fetc", None),  # fullwidth solidus becomes '/' under NFKC
        (None, None),
        (42, None),
        (["alice"], None),
    ],
)
def test_safe_username_rules(raw: object, expected: str | None) -> None:
    assert safe_username(raw) == expected


def test_safe_username_max_length() -> None:
    assert safe_username("abcdef", max_length=6) == "abcdef"
    assert safe_username("abcdefg", max_length=6) is None
    with pytest.raises(ValueError, match="max_length"):
        safe_username("a", max_length=0)


# --- Rules ------------------------------------------------------------------------------


def m(text: str) -> GroupMembership:
    return membership_from_string(text)


def test_rule_parsing() -> None:
    assert parse_group_rule("iris") == GroupRule("iris", None)
    assert parse_group_rule("iris/lsst:role=manager") == GroupRule("iris/lsst", "manager")
    assert str(parse_group_rule("iris/lsst:role=manager")) == "iris/lsst:role=manager"


def test_rule_matching_is_exact_and_case_sensitive() -> None:
    rule = parse_group_rule("iris/lsst")
    assert rule.matches(m("iris/lsst"))
    assert rule.matches(m("iris/lsst:role=manager"))  # no role in the rule: any role
    assert not rule.matches(m("iris"))
    assert not rule.matches(m("iris/lsst/desc"))  # no implied hierarchy
    assert not rule.matches(m("IRIS/lsst"))
    assert not parse_group_rule("iris").matches(m("iris/lsst"))


def test_rule_with_role() -> None:
    rule = parse_group_rule("vo.iris.ac.uk:role=manager")
    assert rule.matches(m("vo.iris.ac.uk:role=manager"))
    assert not rule.matches(m("vo.iris.ac.uk:role=member"))
    assert not rule.matches(m("vo.iris.ac.uk"))
    assert not rule.matches(m("vo.iris.ac.uk/lsst:role=manager"))


def test_any_of_and_all_of() -> None:
    held = [m("iris"), m("iris/lsst:role=member"), m("dune")]
    rules = [parse_group_rule(t) for t in ("iris/lsst", "dune")]
    assert any_rule_matches(rules, held)
    assert all_rules_match(rules, held)
    more = [*rules, parse_group_rule("iris/lsst:role=manager")]
    assert any_rule_matches(more, held)
    assert not all_rules_match(more, held)
    assert not any_rule_matches([parse_group_rule("atlas")], held)
    assert all_rules_match([], held)
    assert not any_rule_matches([], held)
    assert not any_rule_matches(rules, [])
    assert all_rules_match(iter(rules), iter(held))  # one-shot iterables work


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/iris",
        "iris/",
        "iris//lsst",
        "iris/../admin",
        "..",
        " iris",
        "iris:",
        "iris:role=",
        "iris:Role=member",
        "iris:admin",
        "iris:role=a:role=b",
        "iris:role=a b",
        "$(id)",
        "\u202eevil",
        "a" * 129,
        "/".join(["a" * 100] * 3),
        "iris:role=" + "r" * 65,
    ],
)
def test_bad_rules_explain_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="the form is 'vo") as info:
        parse_group_rule(text)
    assert "bad group rule" in str(info.value)
    with pytest.raises(ValueError, match="bad group membership"):
        membership_from_string(text)


def test_memberships_validate_and_sort() -> None:
    with pytest.raises(ValueError, match="invalid group membership"):
        GroupMembership("iris", ("..",))
    with pytest.raises(ValueError, match="role"):
        GroupMembership("iris", (), "")
    with pytest.raises(ValueError, match="empty group name component"):
        GroupRule("iris/")
    items = [m("iris:role=b"), m("iris/lsst"), m("iris:role=a"), m("iris"), m("dune")]
    assert [str(x) for x in sorted(items)] == [
        "dune",
        "iris",
        "iris:role=a",
        "iris:role=b",
        "iris/lsst",
    ]
    assert m("iris").group == "iris"
    assert m("iris/lsst:role=x").group == "iris/lsst"
    assert m("iris/lsst:role=x").path == ("lsst",)


def test_claim_problem_is_data() -> None:
    problem = ClaimProblem("groups", "'x'", "why")
    assert str(problem) == "groups: why: 'x'"


# --- Properties -------------------------------------------------------------------------

components = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._+@-]{0,24}", fullmatch=True)
roles = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,24}", fullmatch=True)
memberships = st.builds(
    GroupMembership,
    components,
    st.lists(components, max_size=5).map(tuple),
    st.none() | roles,
)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)
# Text biased towards the separators the parsers care about.
claimish = st.text(alphabet="ab./:%=#@+-_ rRoleE2F3A\x00\u202e\u00e9", max_size=40)
urnish = claimish.map(lambda s: f"{EGI}:group:{s}")


@given(memberships)
def test_membership_string_round_trips_as_rule_and_membership(member: GroupMembership) -> None:
    assert parse_group_rule(str(member)).matches(member)
    assert membership_from_string(str(member)) == member


@given(memberships)
def test_membership_round_trips_through_every_source_format(member: GroupMembership) -> None:
    role_suffix = "" if member.role is None else f":role={member.role}"
    wlcg = "/" + member.group + ("" if member.role is None else f"/Role={member.role}")
    urn = f"{EGI}:group:{':'.join((member.vo, *member.path))}{role_suffix}#aai.egi.eu"
    assert parse_wlcg_groups([wlcg]).memberships == (member,)
    assert parse_entitlements([urn], [EGI]).memberships == (member,)
    if member.role is None:
        assert parse_iam_groups([member.group]).memberships == (member,)


@settings(max_examples=300)
@given(st.one_of(json_like, st.lists(claimish | urnish | json_like)))
def test_parsing_never_raises_and_output_is_canonical(value: object) -> None:
    for result in (
        parse_iam_groups(value),
        parse_wlcg_groups(value),
        parse_entitlements(value, [EGI, EDUTEAMS]),
        canonical_groups({"x": value}, {"x": "entitlement"}, [EGI]),
    ):
        assert_canonical(result)
        for member in result.memberships:
            assert membership_from_string(str(member)) == member


@settings(max_examples=500)
@given(st.text() | claimish, st.integers(min_value=1, max_value=80))
def test_safe_username_is_idempotent_and_safe(raw: str, max_length: int) -> None:
    name = safe_username(raw, max_length)
    if name is None:
        return
    assert USERNAME.fullmatch(name)
    assert ".." not in name
    assert len(name) <= max_length
    assert safe_username(name, max_length) == name


def test_parse_group_rules_names_the_option_and_keeps_order() -> None:
    from iris_jupyterhub.groups import GroupRule, parse_group_rules

    assert parse_group_rules(["iris/lsst", "iris:role=admin"], "X.y") == (
        GroupRule("iris/lsst", None),
        GroupRule("iris", "admin"),
    )
    with pytest.raises(ValueError, match=r"^X\.y: ") as e:
        parse_group_rules(["iris", " bad"], "X.y")
    assert "bad" in str(e.value)
    with pytest.raises(ValueError, match=r"^X\.y: a group rule must be a string"):
        parse_group_rules(["iris", 3], "X.y")
