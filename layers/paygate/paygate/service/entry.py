"""Builds the Lambda handler of a webhook function: settings, logging, metrics and the shared pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from paygate import settings
from paygate.infra.catalog_file import load_catalog
from paygate.infra.dynamodb_store import container_store, load_client_library
from paygate.infra.signature import check_secrets
from paygate.providers.base import WebhookFamily
from paygate.service.apply import ApplyService
from paygate.service.webhooks import WebhookService
from paygate.settings import WebhookSettings


def webhook_handler(family: WebhookFamily) -> Callable[[dict, Any], dict]:
    """The ``handler`` of one webhook function. The store is bound on first use; the catalog (and
    secrets set in the environment) are checked now, so a bad one fails the cold start, named."""
    logger = Logger(service="paygate")
    config = settings.webhook_settings()
    load_catalog(config.catalog_path)
    if config.secret:
        # Secrets given in the environment are checked now: a bad one fails the cold start, naming its
        # position (secrets from Secrets Manager are checked when first read, and answer 500 if bad).
        check_secrets(settings.webhook_secrets(config))
    load_client_library()
    bound: dict[WebhookSettings, WebhookService] = {}

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict, context: Any) -> dict:
        # Per invocation and per thread, not a constructor key: Loggers of one service share their
        # formatter, so in a process serving several functions at once (the tests) a fixed key would
        # name another family.
        logger.thread_safe_append_keys(function_family=family.name)
        service = _service(family, bound)
        result = service.handle(event)
        if result.event_id:
            logger.set_correlation_id(result.event_id)
        status = result.response["statusCode"]
        # Never the body or headers: an unverified request is not logged beyond its status.
        answered = {"status": status, "outcome": result.outcome, "event_type": result.event_type}
        if result.fault:
            logger.error("webhook failed", extra={**answered, "fault": result.fault})
        else:
            logger.info("webhook answered", extra=answered)
        _publish_metric(family, result.outcome or str(status))
        return result.response

    handler.family = family  # type: ignore[attr-defined] - lets dev tools route samples to this function
    return handler


def _publish_metric(family: WebhookFamily, outcome: str) -> None:
    """One EMF line per invocation. ``Metrics`` shares one metric set between all instances and
    threads; a process that runs invocations concurrently (the tests) would flush
    another invocation's metrics, or none. ``EphemeralMetrics`` keeps its own."""
    metrics = EphemeralMetrics(namespace="paygate", service="paygate")
    metrics.add_dimension(name="family", value=family.name)
    metrics.add_metric(name=f"webhook_{outcome}", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


def _service(family: WebhookFamily, bound: dict[WebhookSettings, WebhookService]) -> WebhookService:
    """One service (and DynamoDB client) per container and configuration: keyed by the settings,
    so a process that serves several tables (the tests) never writes to the wrong one."""
    config = settings.webhook_settings()
    service = bound.get(config)
    if service is None:
        catalog = load_catalog(config.catalog_path)
        applier = ApplyService(
            container_store(config.table_name), config.retention_days, catalog=catalog, policy=config.policy
        )
        service = WebhookService(family, applier, catalog, lambda: settings.webhook_secrets(config))
        bound[config] = service
    return service
