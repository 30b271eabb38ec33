"""schemathesis against Camunda's own OpenAPI spec of the Orchestration
Cluster API, for every operation waggle implements: generated requests, valid
and garbage, must never get a 5xx, and every response must match the spec
(status code, content type, headers, body schema).

The spec is the one bundled in the source distribution of the
camunda-orchestration-sdk version the REST tests use (PyPI), fetched once into
.cache/openapi. Status codes the spec leaves out for an operation but Camunda's
gateway answers too are listed, with the reason, in schemathesis_hooks.py."""

import glob
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile

from conftest import REPO, running_broker

HERE = os.path.dirname(os.path.abspath(__file__))

# The operations waggle serves, as paths of the spec (under /v2).
IMPLEMENTED = (
    r"^/(topology|status|deployments"
    r"|resources/\{[a-zA-Z]+\}/deletion"
    r"|decision-definitions/(evaluation|search|\{decisionDefinitionKey\}(/xml)?)"
    r"|decision-requirements/(search|\{decisionRequirementsKey\}(/xml)?)"
    r"|decision-instances/(search|\{decisionEvaluationInstanceKey\})"
    r"|message-subscriptions/search"
    r"|process-definitions/search|process-definitions/\{processDefinitionKey\}(/xml|/form)?"
    r"|process-instances(/search|/\{processInstanceKey\}(/cancellation|/statistics/element-instances|/call-hierarchy)?)?"
    r"|element-instances/search|element-instances/\{elementInstanceKey\}(/variables)?"
    r"|variables/search|variables/\{variableKey\}"
    r"|jobs(/search|/activation|/\{jobKey\}(/completion|/failure|/error)?)"
    r"|incidents/search|incidents/\{incidentKey\}(/resolution)?"
    r"|user-tasks(/search|/\{userTaskKey\}(/assignment|/assignee|/completion|/form)?)"
    r"|messages/publication|signals/broadcast"
    r"|users(/search|/\{username\})?|authentication/me"
    r"|(roles|groups|tenants)(/search|/\{[a-zA-Z]+\}(/[a-z-]+/(search|\{[a-zA-Z]+\}))?)?"
    r"|mapping-rules(/search|/\{mappingRuleId\})?|authorizations(/search|/\{authorizationKey\})?)$"
)
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# Test cases per operation and phase; the run stays within a few minutes.
MAX_EXAMPLES = 20
MAX_RUN_S = 1200


def upstream_spec() -> str:
    version = importlib.metadata.version("camunda-orchestration-sdk")
    directory = os.path.join(REPO, ".cache", "openapi", f"camunda-orchestration-sdk-{version}")
    spec = os.path.join(directory, "bundled_spec.yaml")
    if os.path.exists(spec):
        return spec
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"camunda-orchestration-sdk=={version}", "-d", download],
            check=True,
        )
        (sdist,) = glob.glob(os.path.join(download, "*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/generated/bundled_spec.yaml"))
            with tar.extractfile(member) as src, open(spec + ".part", "wb") as dst:
                dst.write(src.read())
    os.replace(spec + ".part", spec)
    return spec


def test_implemented_operations_conform_to_the_upstream_spec():
    spec = upstream_spec()
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    with running_broker(prefix="waggle-schemathesis-") as broker:
        env = dict(os.environ, PYTHONPATH=HERE, SCHEMATHESIS_HOOKS="schemathesis_hooks")
        run = subprocess.run(
            [schemathesis, "run", spec,
             "--url", f"{broker.rest_url}/v2",
             "--checks", CHECKS,
             "--include-path-regex", IMPLEMENTED,
             "--max-examples", str(MAX_EXAMPLES),
             "--workers", "1",
             "--seed", "8088",
             "--generation-database", "none",
             "--suppress-health-check", "filter_too_much,too_slow,data_too_large",
             "--request-timeout", "30"],
            env=env, cwd=broker.directory, capture_output=True, text=True, timeout=MAX_RUN_S,
        )
        out = run.stdout + run.stderr
        selected = [line for line in out.splitlines() if "Selected:" in line]
        print("\n".join(selected))
        assert selected and not selected[0].strip().startswith("Selected: 0/"), out[-4000:]
        assert run.returncode == 0, out[-20000:]
        assert "Network Error" not in out, out[-20000:]
