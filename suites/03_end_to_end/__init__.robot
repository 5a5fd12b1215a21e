*** Settings ***
Documentation       Phase 3 of the seed plan: end-to-end journeys across two server nodes
...                 (Test 3.1) and error recovery under real faults (Test 3.2).
...
...                 Everything here runs against a private PostgreSQL and a private Redis that the
...                 kit starts, with two reference nodes sharing them, so killing the database, a
...                 node or Redis never touches the shared services or another suite's server.

Resource            ../../resources/recovery.resource

Suite Setup         Two Server Nodes Share A Private Database And Redis
Suite Teardown      Both Nodes And Every Private Service Are Released
Test Timeout        3 minutes

Test Tags           phase-3
