"""ai-proxy-advanced config validation: Kong's defaults, bounds and entity-check messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.plugins.ai_proxy_advanced import PLUGIN
from tests.gateway.plugins.ai_proxy_helpers import config, target


def _error(cfg: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        PLUGIN.validate(cfg)
    return str(caught.value)


def test_defaults() -> None:
    cfg = PLUGIN.validate(config(target(auth=None)))
    assert cfg.response_streaming == "allow"
    assert cfg.max_request_body_size == 1048576
    assert cfg.model_name_header is True
    assert cfg.balancer.algorithm == "round-robin"
    assert cfg.balancer.retries == 5
    assert cfg.balancer.failover_criteria == ["error", "timeout"]
    assert (cfg.balancer.connect_timeout, cfg.balancer.read_timeout) == (60000, 60000)
    [t] = cfg.targets
    assert t.weight == 100
    assert (t.logging.log_statistics, t.logging.log_payloads) == (False, False)
    assert t.model.options.azure_api_version == "2023-05-15"


def test_kong_dump_with_nulls_is_accepted() -> None:
    auth = {
        "header_name": "Authorization",
        "header_value": "Bearer k",
        "param_name": None,
        "param_value": None,
        "param_location": None,
        "allow_override": False,
        "gcp_use_service_account": False,
        "gcp_service_account_json": None,
        "aws_access_key_id": None,
        "aws_secret_access_key": None,
        "azure_use_managed_identity": False,
        "azure_client_id": None,
        "azure_client_secret": None,
        "azure_tenant_id": None,
    }
    options = {"max_tokens": None, "anthropic_version": None, "bedrock": None, "gemini": None}
    model = {"provider": "openai", "name": "gpt-4o", "options": options}
    cfg = config(target(auth=auth, model=model, description=None), embeddings=None, vectordb=None)
    assert PLUGIN.validate(cfg).targets[0].auth is not None


def test_targets_required() -> None:
    assert "targets" in _error({})
    assert "at least 1 item" in _error({"targets": []})


def test_header_auth_mutually_required() -> None:
    message = _error(config(target(auth={"header_name": "Authorization"})))
    assert (
        "all or none of these fields must be set: 'auth.header_name', 'auth.header_value'"
        in message
    )


def test_param_auth_mutually_required() -> None:
    message = _error(config(target(auth={"param_name": "key", "param_value": "v"})))
    assert (
        "all or none of these fields must be set: 'auth.param_name', 'auth.param_value', "
        "'auth.param_location'"
    ) in message


def test_unimplemented_provider_is_rejected_clearly() -> None:
    message = _error(config(target(model={"provider": "bedrock", "name": "claude"})))
    supported = "openai, azure, anthropic, cohere, mistral, llama2, gemini, ollama"
    expected = f"provider 'bedrock' is not supported by Lockgate yet (supported: {supported})"
    assert expected in message
    assert f"expected one of: {supported}" in _error(config(target(model={"provider": "nope"})))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temperature": 5.1}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 501}, "top_k"),
        ({"input_cost": 0}, "input_cost"),
        ({"upstream_url": "ftp://x"}, "upstream_url"),
        ({"upstream_url": "http://"}, "upstream_url"),
        ({"upstream_url": "http://h:99999/"}, "upstream_url"),
        ({"upstream_url": "http://$(headers.host)/v1"}, "template"),
    ],
)
def test_option_bounds(options: dict[str, Any], field: str) -> None:
    model = {"provider": "openai", "name": "gpt-4o", "options": options}
    assert field in _error(config(target(model=model)))


def test_weight_bounds_and_route_type() -> None:
    assert "weight" in _error(config(target(weight=0)))
    assert "weight" in _error(config(target(weight=65536)))
    assert "route_type" in _error(config(target(route_type="llm/v1/files")))


def test_unimplemented_security_relevant_fields_are_rejected() -> None:
    auth = {"header_name": "a", "header_value": "b", "aws_access_key_id": "AKIA"}
    assert "'auth.aws_access_key_id' is not supported by Lockgate yet" in _error(
        config(target(auth=auth))
    )
    assert "balancer algorithm 'semantic' is not supported" in _error(
        config(balancer={"algorithm": "semantic"})
    )
    assert "not supported" in _error(config(vectordb={"strategy": "redis"}))
    assert "llm_format 'gemini' is not supported" in _error(config(llm_format="gemini"))
    assert "model_alias" in _error(config(target(model={"provider": "openai", "model_alias": "x"})))


def test_unknown_fields_are_errors() -> None:
    assert "unknown_field" in _error(config(unknown_field=1))


@pytest.mark.parametrize(
    "algorithm",
    [
        "round-robin",
        "consistent-hashing",
        "lowest-latency",
        "lowest-usage",
        "priority",
        "least-connections",
    ],
)
def test_balancer_algorithms_and_circuit_breaker_fields(algorithm: str) -> None:
    cfg = PLUGIN.validate(
        config(balancer={"algorithm": algorithm, "max_fails": 3, "fail_timeout": 5000})
    )
    assert cfg.balancer.algorithm == algorithm
    assert (cfg.balancer.max_fails, cfg.balancer.fail_timeout) == (3, 5000)


def test_semantic_balancing_is_refused_clearly() -> None:
    assert "balancer algorithm 'semantic' is not supported" in _error(
        config(balancer={"algorithm": "semantic"})
    )
