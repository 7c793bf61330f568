"""Helpers for `infra/cloudformation.yaml`: the template as data, and the part moto's
CloudFormation cannot deploy (IAM, Glue) created through the service APIs instead.

moto's CloudFormation deploys the bucket, the tables and the topic faithfully, but has no model
for `AWS::Glue::Job`, `Workflow` or `Trigger`. `deploy_glue` resolves those resources'
properties (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::If`) as CloudFormation would and creates them
with the Glue API, so tests check the template's own job arguments and trigger chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playcount.aws import Aws

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "cloudformation.yaml"
_NO_VALUE = object()


def load_template() -> dict[str, Any]:
    """The template as plain data, short-form intrinsics (`!Ref`, `!Sub`, ...) as long form."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(name: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if name == "Fn::GetAtt":
                    value = value.split(".", 1)
            else:
                value = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
            return {name: value}

        return construct

    for tag, name in (
        ("!Ref", "Ref"),
        ("!Sub", "Fn::Sub"),
        ("!GetAtt", "Fn::GetAtt"),
        ("!If", "Fn::If"),
        ("!Not", "Fn::Not"),
        ("!Equals", "Fn::Equals"),
    ):
        Loader.add_constructor(tag, intrinsic(name))
    data: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    return data


def refs(value: Any) -> set[str]:
    """Logical names a value refers to (Ref, GetAtt, ${Name} / ${Name.Attr} in Sub)."""
    if isinstance(value, dict):
        out: set[str] = set()
        for k, v in value.items():
            if k == "Ref":
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            else:
                out |= refs(v)
        return out
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


@dataclass
class Resolver:
    """What `Ref` and `Fn::GetAtt` give, for resolving properties as CloudFormation does."""

    template: dict[str, Any]
    names: dict[str, Any]
    """Parameters, pseudo parameters and resources (logical name -> Ref value)."""
    attrs: dict[str, str] = field(default_factory=dict)
    """`Logical.Attr` -> value."""

    def _sub(self, name: str) -> Any:
        return self.attrs[name] if "." in name and not name.startswith("AWS::") else self.names[name]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(x) for x in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.names[arg]
            if key == "Fn::GetAtt":
                return self.attrs[".".join(arg)]
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub(m[1])), arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not _NO_VALUE}


def deploy_glue(aws: Aws, resolver: Resolver, role_arn: str) -> dict[str, str]:
    """Create the template's Glue jobs, workflow and triggers in moto; return logical -> name.

    Jobs first, then the workflow, then the triggers (which name both), as CloudFormation orders
    them by their references. `role_arn` stands for `GlueRole.Arn` (moto deploys no IAM role).
    """
    glue = aws.client("glue")
    resources = resolver.template["Resources"]
    resolver.attrs["GlueRole.Arn"] = role_arn
    created: dict[str, str] = {}
    for kind in ("AWS::Glue::Job", "AWS::Glue::Workflow", "AWS::Glue::Trigger"):
        for logical, resource in resources.items():
            if resource["Type"] != kind:
                continue
            props = resolver.resolve(resource["Properties"])
            if kind == "AWS::Glue::Job":
                glue.create_job(**props)
            elif kind == "AWS::Glue::Workflow":
                glue.create_workflow(**props)
            else:
                glue.create_trigger(**props)
            created[logical] = props["Name"]
            resolver.names[logical] = props["Name"]
    return created


def job_chain(aws: Aws, workflow: str) -> list[str]:
    """The jobs of a workflow in the order its triggers start them: the start trigger's job,
    then the job each conditional trigger starts when the previous one SUCCEEDED."""
    glue = aws.client("glue")
    triggers = [t for t in glue.get_triggers()["Triggers"] if t.get("WorkflowName") == workflow]
    [start] = [t for t in triggers if t["Type"] in ("ON_DEMAND", "SCHEDULED")]
    chain = [a["JobName"] for a in start["Actions"]]
    while True:
        after = [
            t
            for t in triggers
            if t["Type"] == "CONDITIONAL"
            and [(c["JobName"], c["State"], c["LogicalOperator"]) for c in t["Predicate"]["Conditions"]]
            == [(chain[-1], "SUCCEEDED", "EQUALS")]
        ]
        if not after:
            return chain
        [trigger] = after
        chain += [a["JobName"] for a in trigger["Actions"]]
