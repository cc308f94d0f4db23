"""Lambda authorizer (HTTP API, payload 2.0, simple responses) for every premium route."""

from paygate.service.authorizer import authorizer_handler

handler = authorizer_handler()
