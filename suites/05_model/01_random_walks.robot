*** Settings ***
Documentation       Random walks over the whole protocol alphabet: connect (good, expired, not yet
...                 valid, badly signed and foreign tokens; resume behind, at, ahead of the head,
...                 at the replay limit, malformed, forbidden), clean close, dropped network,
...                 send (new, retried with the same or another body, keys of 128/129 chars,
...                 bodies one below, at and one above the byte limit in 2-, 3- and 4-byte
...                 characters, too deep, null), edit and delete with current, stale and future
...                 versions, receipts around the cursor and the head, history pages around every
...                 edge, presence and presence queries over WebSocket and REST, members added and
...                 removed while online or offline, rows inserted and updated with SQL.
...
...                 ``MODEL_SEED`` replays a run (``SEED.BATCH`` from the batch that failed);
...                 ``MODEL_BUDGET`` (``90``, ``10m``) sets how long the walks run.

Resource            ../../resources/ccs.resource


*** Variables ***
# The make test budget: long enough for about a hundred walks, short enough for CI.
${MODEL_WALK_BUDGET}    40s


*** Test Cases ***
Random Walks Of Devices Agree With The Protocol Model
    [Documentation]    Every reply, every device's frames, the stored rows and presence answers
    ...    match the model after every step of every walk (P1-P11, P15, P16).
    [Tags]    seed-1.1    seed-1.2    seed-1.3    seed-3.1    seed-3.2
    [Timeout]    20 minutes
    ${summary}    Run Model Walks    budget=${MODEL_WALK_BUDGET}
    Log    ${summary}
