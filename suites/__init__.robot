*** Settings ***
Documentation       CCS integration suites: the reference server (or ``SUT_URL``), PostgreSQL and
...                 real WebSockets. Every test gets fresh users, devices and conversations and
...                 closes its devices when it ends.

Resource            ../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices
