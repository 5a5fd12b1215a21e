*** Settings ***
Documentation     Phase 2 of the seed plan: integration stress tests (Tests 2.1 and 2.2).
...               Hundreds of device connections from one process, open-loop load, races, and
...               an end-to-end consistency check of every message (lost, unexpected, duplicated,
...               out of order, gaps, missing per device - all asserted zero).
...               Run with ``make stress`` (pabot, one process per suite, merged report).

Resource          ../../resources/ccs.resource
Resource          ../../resources/stress.resource

Suite Setup       The Environment Is Ready

Suite Teardown    Disconnect All Load Fleets
Test Timeout      3 minutes

Test Tags         stress    phase-2
