*** Settings ***
Documentation       Model-based generative testing: random walks of devices over real WebSockets,
...                 REST and SQL, each step checked against a reference model of
...                 ``docs/protocol.md`` (replies, every device's frames, database rows, presence
...                 answers). A failing walk is shrunk and printed as numbered steps plus a
...                 ready-to-paste Robot test. The walks run on a node of their own with small
...                 limits (replay 3, 3 connections per user, 8192-byte bodies) so a short walk
...                 reaches every documented edge; ``CCS_MODEL_OWN_NODE=0`` uses ``SUT_URL`` as is.

Resource            ../../resources/ccs.resource

Suite Setup         Start Model Node
Suite Teardown      Run Keywords
...                     Close All Devices    AND
...                     Stop Model Node
Test Teardown       Close All Devices

Test Tags           model
