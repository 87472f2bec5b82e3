"""The Logging query-language evaluator that the Terraform tests rely on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.logfilter import FilterSyntaxError, compile_filter

ENTRY: dict[str, Any] = {
    "resource": {"type": "gce_instance", "labels": {"zone": "europe-west4-a"}},
    "severity": "NOTICE",
    "operation": {"first": True, "id": "op-1"},
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "methodName": "v1.compute.instances.delete",
        "status": {"code": 0},
    },
    "jsonPayload": {"count": 3, "code": "7", "flag": "true", "a.b": {"c": "dotted"}, "line": "end\n"},
    "labels": {"compute.googleapis.com/resource_name": "gke-a"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('resource.type="gce_instance"', True, id="equal"),
        pytest.param('resource.type="GCE_INSTANCE"', True, id="equality-ignores-case"),
        pytest.param('resource.type!="gce_instance"', False, id="not-equal"),
        pytest.param('resource.type="gce"', False, id="equal-is-whole-value"),
        pytest.param('resource.type:"INSTANCE"', True, id="has-is-case-insensitive-substring"),
        pytest.param('resource.type=~"^gce_"', True, id="regex-unanchored-search"),
        pytest.param('resource.type=~"^GCE_"', False, id="regex-is-case-sensitive"),
        pytest.param('resource.type!~"^gke"', True, id="regex-not"),
        pytest.param('resource.type=("k8s_node" OR "gce_instance")', True, id="value-list"),
        pytest.param('resource.type=("k8s_node" OR "k8s_pod")', False, id="value-list-miss"),
        pytest.param("operation.first=true", True, id="bool"),
        pytest.param("operation.first=false", False, id="bool-false"),
        pytest.param("jsonPayload.flag=true", False, id="string-is-not-a-bool"),
        pytest.param("jsonPayload.count>2", True, id="number"),
        pytest.param("jsonPayload.count>=4", False, id="number-ge"),
        pytest.param("jsonPayload.code>5", True, id="numeric-string"),
        pytest.param("protoPayload.status.code>0", False, id="zero"),
        pytest.param("NOT protoPayload.status.code>0", True, id="not"),
        pytest.param("NOT protoPayload.missing.code>0", True, id="missing-field-comparison-is-false"),
        pytest.param("protoPayload.missing.code<=0", False, id="missing-field"),
        pytest.param("protoPayload.status:*", True, id="exists"),
        pytest.param("protoPayload.missing:*", False, id="not-exists"),
        pytest.param("severity<ERROR", True, id="severity-order"),
        pytest.param("severity>=WARNING", False, id="severity-order-ge"),
        pytest.param("severity=notice", True, id="severity-name-case"),
        pytest.param('resource.type="gce_instance" operation.first=false', False, id="juxtaposition-is-and"),
        pytest.param('resource.type="x" OR operation.first=true', True, id="or"),
        # OR binds tighter than AND: (a OR b) AND c
        pytest.param('resource.type="gce_instance" OR operation.first=true AND severity>=ERROR', False, id="or-first"),
        pytest.param('resource.type="gce_instance" OR (operation.first=true AND severity>=ERROR)', True, id="parens"),
        pytest.param('NOT resource.type="x" AND NOT severity>=ERROR', True, id="not-binds-tightest"),
        # field path names with special characters are double-quoted
        pytest.param('protoPayload."@type"="type.googleapis.com/google.cloud.audit.AuditLog"', True, id="quoted-name"),
        pytest.param('protoPayload."@type"="type.googleapis.com/google.protobuf.Struct"', False, id="quoted-name-miss"),
        pytest.param('jsonPayload."a.b".c="dotted"', True, id="quoted-name-with-dots-then-more"),
        pytest.param('jsonPayload."a".c="dotted"', False, id="quoted-name-is-one-name"),
        pytest.param('labels."compute.googleapis.com/resource_name"="gke-a"', True, id="quoted-label-key"),
        pytest.param('protoPayload."@type":*', True, id="quoted-name-exists"),
        # RE2's $ (not multi-line) is the end of the text only; Python's would also match before a final newline
        pytest.param('jsonPayload.line=~"end$"', False, id="regex-dollar-is-end-of-text"),
        pytest.param('jsonPayload.line=~"end[^a]$"', True, id="regex-dollar-after-the-newline"),
        pytest.param('jsonPayload.line=~"[$]"', False, id="regex-dollar-in-class-is-literal"),
        pytest.param('resource.type=~"instance$"', True, id="regex-dollar"),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert compile_filter(text).matches(ENTRY) is expected


def test_missing_severity_is_default() -> None:
    assert compile_filter("severity<DEBUG").matches({"resource": {}})
    assert not compile_filter("severity>=DEFAULT").matches({"severity": "SOMETHING"})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('"free text"', id="global-restriction"),
        pytest.param("robot", id="bare-word"),
        pytest.param('-resource.type="x"', id="minus-negation"),
        pytest.param('resource.type="x" AND', id="dangling-and"),
        pytest.param('(resource.type="x"', id="unclosed-paren"),
        pytest.param('resource.type=~"(?=x)"', id="lookahead"),
        pytest.param("severity<LOUD", id="unknown-severity"),
        pytest.param('jsonPayload.count>"many"', id="ordered-non-number"),
        pytest.param('resource.type="x" ; severity=ERROR', id="stray-character"),
        pytest.param('protoPayload. "@type"="x"', id="quoted-name-not-adjacent"),
        pytest.param('protoPayload.="x"', id="path-ends-with-a-dot"),
        pytest.param('protoPayload..methodName="x"', id="empty-name"),
        pytest.param('resource.type=~"(?m)x$"', id="multi-line-mode"),
    ],
)
def test_unsupported_syntax_is_an_error(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        compile_filter(text)
