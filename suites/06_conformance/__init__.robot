*** Settings ***
Documentation       Protocol conformance: statements of ``docs/protocol.md`` that the journeys of the
...                 other suites do not exercise, one statement (or a few related ones) per test,
...                 each test tagged with the ids it proves (``spec:4.2-i``).

Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices

Test Tags           conformance
Test Timeout        1 minute
