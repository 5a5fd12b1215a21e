*** Settings ***
Documentation       Phase 1 of the seed plan: unit integration tests (Tests 1.1-1.3).
...                 Database <-> WebSocket message flow, real-time presence and delivery
...                 confirmations, each proven against the server, its database and live sockets.

Resource            ../../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices

Test Tags           phase-1
Test Timeout        1 minute
