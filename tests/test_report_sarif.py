"""SARIF 2.1.0 output, validated against the essential parts of the official schema.

There is no network here and no package ships the schema, so the definitions
ftdoctor's output uses are transcribed below from the OASIS SARIF 2.1.0 schema
(sarif-schema-2.1.0.json), keeping their required properties, types, enums,
minimums and ``additionalProperties: false`` — an unknown or misspelt property
fails validation as it would against the full schema.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from ftdoctor.catalogue import load_catalogue, make_finding
from ftdoctor.findings import Report
from ftdoctor.report import render
from ftdoctor.report.sarif import to_sarif


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    properties = {**properties, "properties": {"$ref": "#/definitions/propertyBag"}}
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


_REF = lambda name: {"$ref": f"#/definitions/{name}"}  # noqa: E731
_ARRAY = lambda name, unique=False: {"type": "array", "items": _REF(name), "uniqueItems": unique}  # noqa: E731
_LEVEL = {"enum": ["none", "note", "warning", "error"]}

SARIF_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": _ARRAY("run"),
        "properties": _REF("propertyBag"),
    },
    "definitions": {
        "propertyBag": {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}}},
        "message": _obj({"text": {"type": "string"}, "markdown": {"type": "string"}, "id": {"type": "string"},
                         "arguments": {"type": "array", "items": {"type": "string"}}}),
        "multiformatMessageString": _obj({"text": {"type": "string"}, "markdown": {"type": "string"}}, ("text",)),
        "run": _obj({
            "tool": _REF("tool"),
            "results": _ARRAY("result"),
            "originalUriBaseIds": {"type": "object", "additionalProperties": _REF("artifactLocation")},
            "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
            "invocations": {"type": "array"},
            "artifacts": {"type": "array"},
        }, ("tool",)),
        "tool": _obj({"driver": _REF("toolComponent"), "extensions": _ARRAY("toolComponent", True)}, ("driver",)),
        "toolComponent": _obj({
            "name": {"type": "string"},
            "version": {"type": "string"},
            "semanticVersion": {"type": "string"},
            "informationUri": {"type": "string", "format": "uri"},
            "rules": _ARRAY("reportingDescriptor", True),
        }, ("name",)),
        "reportingDescriptor": _obj({
            "id": {"type": "string"},
            "name": {"type": "string"},
            "shortDescription": _REF("multiformatMessageString"),
            "fullDescription": _REF("multiformatMessageString"),
            "help": _REF("multiformatMessageString"),
            "helpUri": {"type": "string", "format": "uri"},
            "defaultConfiguration": _REF("reportingConfiguration"),
        }, ("id",)),
        "reportingConfiguration": _obj({"enabled": {"type": "boolean"}, "level": _LEVEL,
                                        "rank": {"type": "number", "minimum": -1, "maximum": 100}}),
        "result": _obj({
            "ruleId": {"type": "string"},
            "ruleIndex": {"type": "integer", "minimum": -1},
            "level": _LEVEL,
            "kind": {"enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]},
            "message": _REF("message"),
            "locations": _ARRAY("location"),
            "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
        }, ("message",)),
        "location": _obj({"id": {"type": "integer", "minimum": -1}, "physicalLocation": _REF("physicalLocation"),
                          "message": _REF("message")}),
        "physicalLocation": _obj({"artifactLocation": _REF("artifactLocation"), "region": _REF("region"),
                                  "contextRegion": _REF("region")}),
        "artifactLocation": _obj({"uri": {"type": "string", "format": "uri-reference"}, "uriBaseId": {"type": "string"},
                                  "index": {"type": "integer", "minimum": -1}, "description": _REF("message")}),
        "region": _obj({
            "startLine": {"type": "integer", "minimum": 1},
            "startColumn": {"type": "integer", "minimum": 1},
            "endLine": {"type": "integer", "minimum": 1},
            "endColumn": {"type": "integer", "minimum": 1},
            "charOffset": {"type": "integer", "minimum": -1},
            "charLength": {"type": "integer", "minimum": 0},
            "snippet": {"type": "object"},
            "message": _REF("message"),
        }),
    },
}


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(document)


def check_report() -> Report:
    return Report(mode="check", files_checked=2, findings=[
        make_finding("missing-zero-grad", "gradients of `optimizer` are never cleared", "call optimizer.zero_grad()",
                     path="src/train.py", line=35, column=9, end_line=35, end_column=24),
        make_finding("seed-not-set", "no seed is set", "call transformers.set_seed(0)", path="src/my train.py", line=1, column=1),
        make_finding("parse-error", "the file cannot be decoded", "save it as UTF-8", path="broken.py"),
    ])


def run_report() -> Report:
    return Report(mode="run", steps=40, overhead=0.02, metrics={"val_loss": 0.5}, findings=[
        make_finding("grads-accumulating", "gradient norm grows every step", "call zero_grad()", step=3,
                     evidence={"growth": 1.9, "threshold": 1.5}),
        make_finding("lr-too-high", "updates are 10% of weights", "lower the learning rate", step=5,
                     path="train.py", line=12, column=5),
    ])


def test_check_report_validates_and_carries_rule_metadata() -> None:
    document = json.loads(render(check_report(), "sarif"))
    validate(document)
    driver = document["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("ftdoctor", "0.2.0")
    assert driver["informationUri"].startswith("https://")
    static_docs = [doc for doc in load_catalogue().values() if "static" in doc.kinds]
    assert [r["id"] for r in driver["rules"]] == [doc.code for doc in static_docs]
    rule = next(r for r in driver["rules"] if r["name"] == "seed-not-set")
    assert rule["defaultConfiguration"]["level"] == "note"
    assert rule["shortDescription"]["text"] == load_catalogue()["seed-not-set"].summary
    assert rule["help"]["markdown"].startswith("**FTD125 seed-not-set**")


def test_results_point_at_rules_and_locations() -> None:
    document = to_sarif(check_report())
    run = document["runs"][0]
    first, second, third = sorted(run["results"], key=lambda r: r["ruleId"])
    assert first["ruleId"] == "FTD100" and first["properties"]["slug"] == "parse-error"
    assert first["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "broken.py", "uriBaseId": "%SRCROOT%"}}
    assert run["tool"]["driver"]["rules"][second["ruleIndex"]]["id"] == "FTD101"
    assert second["level"] == "error"
    assert second["locations"][0]["physicalLocation"]["region"] == {"startLine": 35, "startColumn": 9, "endLine": 35, "endColumn": 24}
    assert third["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/my%20train.py"
    assert third["level"] == "note"


def test_run_report_validates_and_unlocated_findings_have_no_locations() -> None:
    document = to_sarif(run_report())
    validate(document)
    results = document["runs"][0]["results"]
    assert "locations" not in results[0]
    assert results[0]["properties"]["step"] == 3 and results[0]["properties"]["evidence"]["growth"] == 1.9
    assert results[1]["locations"][0]["physicalLocation"]["region"]["startLine"] == 12
    assert {r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]} >= {"FTD201", "FTD202"}


def test_a_notebook_finding_is_located_by_cell_and_cell_line() -> None:
    finding = make_finding("missing-zero-grad", "cell 4: gradients are never cleared", "call zero_grad()",
                           path="nb.ipynb", line=7, column=5, cell=4)
    document = to_sarif(Report(mode="check", files_checked=1, findings=[finding]))
    validate(document)
    (result,) = document["runs"][0]["results"]
    assert result["message"]["text"].startswith("cell 4, line 7: gradients are never cleared")
    assert (result["properties"]["cell"], result["properties"]["cellLine"]) == (4, 7)
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_empty_report_is_valid_sarif() -> None:
    document = to_sarif(Report(mode="check", files_checked=0))
    validate(document)
    assert document["runs"][0]["results"] == []


def test_the_trimmed_schema_rejects_what_the_official_one_rejects() -> None:
    bad_level = to_sarif(check_report())
    bad_level["runs"][0]["results"][0]["level"] = "info"
    bad_region = to_sarif(check_report())
    bad_region["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    misspelt = to_sarif(check_report())
    misspelt["runs"][0]["results"][0]["ruleID"] = "FTD100"
    for document in (bad_level, bad_region, misspelt):
        with pytest.raises(jsonschema.ValidationError):
            validate(document)
