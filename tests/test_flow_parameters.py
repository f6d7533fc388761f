"""The warehouse flow's parameters as a Prefect user meets them: the deployment's schema (what the UI's
custom-run form and `prefect deployment run --param` offer) is flat, typed and described."""

from __future__ import annotations

import inspect

import yaml
from conftest import REPO_ROOT
from prefect.utilities.callables import parameter_schema, parameter_schema_from_entrypoint

from flows.warehouse_flow import RunParameters, warehouse

# the JSON-schema type each parameter's form field takes (a nullable one also accepts null)
EXPECTED_TYPES = {
    "as_of": ("string", "date-time"),
    "full_refresh": ("boolean", None),
    "sources": ("array", None),
    "backfill_from": ("string", "date"),
    "force_deletes": ("boolean", None),
    "allow_earlier_as_of": ("boolean", None),
}


def _type_of(prop: dict) -> tuple[str, str | None]:
    kinds = [kind for kind in prop.get("anyOf", [prop]) if kind.get("type") != "null"]
    assert len(kinds) == 1, prop
    return kinds[0]["type"], kinds[0].get("format")


def test_the_deployment_schema_is_the_flow_schema_and_every_parameter_is_typed_and_described() -> None:
    # `prefect deploy` reads the schema from the entrypoint's source, without importing it: both must agree
    (deployment,) = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    assert deployment["entrypoint"] == "flows/warehouse_flow.py:warehouse"
    deployed = parameter_schema_from_entrypoint(str(REPO_ROOT / deployment["entrypoint"])).model_dump()
    assert deployed == parameter_schema(warehouse).model_dump()
    properties = deployed["properties"]
    assert list(properties) == list(inspect.signature(warehouse.fn).parameters)
    assert {name: _type_of(prop) for name, prop in properties.items()} == EXPECTED_TYPES
    undescribed = [name for name, prop in properties.items() if len(prop.get("description", "")) < 20]
    assert not undescribed
    assert deployed["required"] == []  # a scheduled run with no parameters is a normal daily run


def test_the_recorded_parameters_are_the_flow_parameters() -> None:
    """``ctl.run.parameters`` records RunParameters: a parameter added to the flow is recorded too."""
    assert list(RunParameters.model_fields) == list(inspect.signature(warehouse.fn).parameters)
    defaults = {name: p.default for name, p in inspect.signature(warehouse.fn).parameters.items()}
    assert RunParameters().model_dump() == defaults
