# robocop: off=line-too-long
*** Settings ***
Documentation       ``resume`` in hello (P9): a malformed seq fails the whole hello closed
...                 (``bad_request``, close 4500); a seq above the head says so; a conversation
...                 the user may not read is ``forbidden`` with no head disclosed.

Resource            ../../resources/hostile.resource

Test Tags           P9
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       A Hello Resuming ${resume} Ends With "${outcome}"


*** Test Cases ***                              RESUME                                  OUTCOME
Resume With A Negative Seq                      {"$ARENA": -1}                          bad_request 4500
    [Tags]    spec:3.1-i
Resume With A Fractional Seq                    {"$ARENA": 1.5}                         bad_request 4500
    [Tags]    spec:3.1-i
Resume With A String Seq                        {"$ARENA": "abc"}                       bad_request 4500
    [Tags]    spec:3.1-i
Resume With A Boolean Seq                       {"$ARENA": true}                        bad_request 4500
    [Tags]    spec:3.1-i
Resume With Seq 2^64                            {"$ARENA": 18446744073709551616}        bad_request 4500
    [Tags]    spec:3.1-i
Resume That Is Not An Object                    \[1, 2]                                bad_request 4500
    [Tags]    spec:3.1-i
Resume Above The Head                           {"$ARENA": 9223372036854775807}         welcome seq_ahead_of_head head=shown
    [Tags]    spec:3.2-h
Resume Of A Conversation Of Others              {"$OSCAR_ROOM": 0}                      welcome forbidden head=hidden
    [Tags]    spec:3.2-i    P15
Resume Of An Unknown Conversation               {"$UNKNOWN": 0}                         welcome forbidden head=hidden
    [Tags]    spec:3.2-i
